import { addRange, subtract, uncovered, type Range } from './ranges.js';

/**
 * Exact accounting of one flow of pings (one canary run to one coalminer) from the sequence numbers
 * that arrive. Every sequence number from the first one expected up to the highest seen is in exactly one
 * state: received, in flight (a gap not yet judged), lost, send-failed (the canary said its publish
 * failed), or dropped locally (it reached this process, whose own buffer was full). So
 * `expected = received + inFlight + lost + sendFailed + droppedLocally` holds at every moment, where
 * `expected` counts the sequence numbers the flow has reached. Reordering is never loss or duplication;
 * a message that turns up after being declared lost is taken back from `lost` and counted `late`.
 * Memory is bounded: a window of `historyWindow` sequence numbers is remembered; older arrivals are
 * `stale` (counted, not judged).
 */
export interface SequenceOptions {
  /** A gap further than this many sequence numbers below the highest one is declared lost. */
  reorderWindow?: number;
  /** A gap older than this is declared lost. */
  lossTimeoutMs?: number;
  /** How many recent sequence numbers are remembered for duplicate and late detection. Power of two. */
  historyWindow?: number;
  /** Most gaps tracked at once; beyond it the oldest gap is declared lost early. */
  maxGaps?: number;
}

export type Arrival = 'new' | 'reordered' | 'duplicate' | 'late' | 'stale';

export interface SequenceCounts {
  expected: number;
  received: number;
  inFlight: number;
  lost: number;
  sendFailed: number;
  /**
   * Of `received`, pings the canary said it failed to publish: the outcome was in doubt (say, the
   * connection dropped after the broker took the message but before its reply) and the ping arrived.
   */
  sendFailedArrived: number;
  /** Pings that reached this coalminer but that its own full buffer dropped: never counted as lost. */
  droppedLocally: number;
  duplicated: number;
  reordered: number;
  late: number;
  stale: number;
}

/** All-zero counts, to sum flows into. */
export function emptyCounts(): SequenceCounts {
  return {
    expected: 0,
    received: 0,
    inFlight: 0,
    lost: 0,
    sendFailed: 0,
    sendFailedArrived: 0,
    droppedLocally: 0,
    duplicated: 0,
    reordered: 0,
    late: 0,
    stale: 0,
  };
}

/** Adds `from` into `into`, field by field (flows of one canary and coalminer, several runs). */
export function addCounts(into: SequenceCounts, from: SequenceCounts): SequenceCounts {
  for (const k of Object.keys(into) as (keyof SequenceCounts)[]) into[k] += from[k];
  return into;
}

interface Gap extends Range {
  noticedMs: number;
}

export class SequenceTracker {
  private readonly reorderWindow: number;
  private readonly lossTimeoutMs: number;
  private readonly window: number;
  private readonly maxGaps: number;
  private readonly bits: Uint8Array;
  private base = -1;
  private highest = -1;
  private readonly gaps: Gap[] = [];
  private lostRanges: Range[] = [];
  private failedRanges: Range[] = [];
  /** Failed ranges announced for sequence numbers not reached yet; applied when they are. */
  private pendingFailed: Range[] = [];
  /** Sequence numbers this process dropped (its buffer was full): beyond the head, and within the window. */
  private pendingDropped: Range[] = [];
  private droppedRanges: Range[] = [];
  /** Every sequence number announced as failed (within the history window): news already taken. */
  private announced: Range[] = [];
  /** Sequence numbers ever declared lost (monotonic: later arrivals and send-failure news do not undo it). */
  declaredLost = 0;
  private readonly c = {
    received: 0,
    lost: 0,
    sendFailed: 0,
    sendFailedArrived: 0,
    droppedLocally: 0,
    duplicated: 0,
    reordered: 0,
    late: 0,
    stale: 0,
    inFlight: 0,
  };

  constructor(opts: SequenceOptions = {}) {
    this.reorderWindow = opts.reorderWindow ?? 1000;
    this.lossTimeoutMs = opts.lossTimeoutMs ?? 5000;
    const w = opts.historyWindow ?? 1 << 16;
    this.window = 2 ** Math.ceil(Math.log2(Math.max(w, this.reorderWindow * 2, 64)));
    this.maxGaps = opts.maxGaps ?? 10_000;
    this.bits = new Uint8Array(this.window / 8);
  }

  /** Sets the first sequence number this flow expects (from the canary's confirm); earlier ones are not ours. */
  start(firstSeq: number): void {
    if (this.base < 0) {
      this.base = firstSeq;
      this.highest = firstSeq - 1;
    }
  }

  counts(): SequenceCounts {
    const expected = this.base < 0 ? 0 : this.highest - this.base + 1;
    return { expected, ...this.c };
  }

  /** Pings announced as failed that arrived anyway, so far (see SequenceCounts.sendFailedArrived). */
  get sendFailedArrived(): number {
    return this.c.sendFailedArrived;
  }

  /** Pings dropped by this process so far (see SequenceCounts.droppedLocally). */
  get droppedLocally(): number {
    return this.c.droppedLocally;
  }

  get highestSeq(): number {
    return this.highest;
  }

  /**
   * Records the canary's word that these sequence numbers were never published. Only news is taken:
   * the canary repeats its announcements, and a repeat changes nothing.
   */
  noteFailed(ranges: readonly [number, number][]): void {
    // Sequence numbers at or below the floor are beyond the bitmap: whether they arrived is forgotten.
    const floor = this.highest - this.window;
    for (const [a0, b0] of ranges) {
      const a = this.base >= 0 ? Math.max(a0, this.base) : a0;
      if (b0 < a || b0 <= floor) continue;
      const fresh = uncovered(this.announced, a, b0);
      addRange(this.announced, a, b0);
      for (const p of fresh) {
        if (p.b > this.highest) addRange(this.pendingFailed, Math.max(p.a, this.highest + 1), p.b);
        if (p.a > this.highest) continue;
        const b = Math.min(p.b, this.highest);
        const known = Math.max(p.a, floor + 1);
        let received = Math.max(0, b - known + 1);
        // Within what we have reached: move from in flight or lost to send-failed.
        for (const r of subtract(this.gaps, p.a, b)) {
          this.c.inFlight -= r.b - r.a + 1;
          received -= overlap(r, known, b);
          this.markFailed(r.a, r.b);
        }
        for (const r of subtract(this.lostRanges, p.a, b)) {
          this.c.lost -= r.b - r.a + 1;
          received -= overlap(r, known, b);
          this.markFailed(r.a, r.b);
        }
        // What is neither had arrived before the news: its publish reported an error, yet it was sent.
        this.c.sendFailedArrived += received;
      }
    }
  }

  /**
   * Records that this ping reached the process but was dropped before it could be read (the local
   * buffer was full): it is dropped locally, not lost, whether or not the head has reached it.
   */
  noteDropped(seq: number): void {
    if (this.base < 0 || !Number.isSafeInteger(seq) || seq < this.base) return;
    if (seq > this.highest) {
      addRange(this.pendingDropped, seq, seq);
      return;
    }
    if (seq <= this.highest - this.window || this.getBit(seq)) return; // forgotten, or a copy that arrived
    if (this.removeFromGaps(seq)) this.c.inFlight--;
    else if (removeFromRanges(this.lostRanges, seq)) this.c.lost--;
    else return; // already send-failed or dropped
    this.markDropped(seq, seq);
  }

  private markDropped(a: number, b: number): void {
    addRange(this.droppedRanges, a, b);
    this.c.droppedLocally += b - a + 1;
  }

  private markFailed(a: number, b: number): void {
    addRange(this.failedRanges, a, b);
    this.c.sendFailed += b - a + 1;
  }

  /**
   * Records an arrival. `seq` must be a safe integer (the coalminer refuses others, and heads that the
   * flow's rate cannot explain, before they get here): the work done is bounded by the history window
   * whatever the gap.
   */
  observe(seq: number, nowMs: number): Arrival {
    if (!Number.isSafeInteger(seq) || seq < 0)
      throw new RangeError(`sequence number ${seq} is not a safe integer`);
    if (this.base < 0) this.start(seq);
    if (seq < this.base) {
      this.c.stale++;
      return 'stale';
    }
    if (seq > this.highest) {
      // Announced as failed before it came: sent after all.
      if (this.pendingFailed.length > 0 && subtract(this.pendingFailed, seq, seq).length > 0)
        this.c.sendFailedArrived++;
      // Another copy of one this process dropped: it is received after all.
      if (this.pendingDropped.length > 0) subtract(this.pendingDropped, seq, seq);
      this.advance(seq, nowMs);
      this.setBit(seq);
      this.c.received++;
      return 'new';
    }
    if (seq <= this.highest - this.window) {
      this.c.stale++;
      return 'stale';
    }
    if (this.getBit(seq)) {
      this.c.duplicated++;
      return 'duplicate';
    }
    this.setBit(seq);
    this.c.received++;
    this.c.reordered++;
    if (this.removeFromGaps(seq)) {
      this.c.inFlight--;
      return 'reordered';
    }
    if (removeFromRanges(this.lostRanges, seq)) {
      this.c.lost--;
      this.c.late++;
      return 'late';
    }
    if (removeFromRanges(this.droppedRanges, seq)) {
      this.c.droppedLocally--;
      return 'reordered';
    }
    if (removeFromRanges(this.failedRanges, seq)) {
      // Its publish reported an error, yet it arrived: it was sent after all.
      this.c.sendFailed--;
      this.c.sendFailedArrived++;
    }
    return 'reordered';
  }

  /** Declares lost what waited past the loss timeout or fell out of the reorder window. */
  tick(nowMs: number): void {
    const floor = this.highest - this.reorderWindow;
    while (this.gaps.length > 0) {
      const g = this.gaps[0]!;
      if (g.noticedMs + this.lossTimeoutMs <= nowMs) {
        this.gaps.shift();
        this.declareLost(g.a, g.b);
      } else if (g.a < floor) {
        const b = Math.min(g.b, floor - 1);
        this.declareLost(g.a, b);
        if (b === g.b) this.gaps.shift();
        else g.a = b + 1;
      } else {
        break;
      }
    }
    // Ranges that fell out of the history window can no longer be taken back: forget them.
    const oldest = this.highest - this.window;
    this.lostRanges = this.lostRanges.filter((r) => r.b > oldest);
    this.failedRanges = this.failedRanges.filter((r) => r.b > oldest);
    this.droppedRanges = this.droppedRanges.filter((r) => r.b > oldest);
    this.announced = this.announced.filter((r) => r.b > oldest);
  }

  /**
   * The canary's word that it attempted every sequence number below `next` (its last word on a flow):
   * those not seen yet become gaps, judged as usual, so pings sent after the last one that arrived are
   * not forgotten.
   */
  reach(next: number, nowMs: number): void {
    if (!Number.isSafeInteger(next)) throw new RangeError(`sequence number ${next} is not a safe integer`);
    if (this.base < 0 || next - 1 <= this.highest) return;
    this.extend(next - 1, nowMs);
    this.highest = next - 1;
  }

  private advance(seq: number, nowMs: number): void {
    this.extend(seq - 1, nowMs);
    this.clearBits(seq, seq);
    this.highest = seq;
  }

  /**
   * Moves the window onto highest+1..to: each number a gap, unless announced as failed or dropped by
   * this process.
   */
  private extend(to: number, nowMs: number): void {
    let a = this.highest + 1;
    if (to < a) return;
    this.clearBits(a, to);
    const known = [
      ...subtract(this.pendingFailed, a, to).map((r) => ({ ...r, failed: true })),
      ...subtract(this.pendingDropped, a, to).map((r) => ({ ...r, failed: false })),
    ].sort((x, y) => x.a - y.a);
    for (const r of known) {
      // A number both announced failed and dropped here counts once, as failed (it came first).
      const ra = Math.max(r.a, a);
      if (ra > r.b) continue;
      if (ra > a) this.addGap(a, ra - 1, nowMs);
      if (r.failed) this.markFailed(ra, r.b);
      else this.markDropped(ra, r.b);
      a = r.b + 1;
    }
    if (a <= to) this.addGap(a, to, nowMs);
  }

  private addGap(a: number, b: number, nowMs: number): void {
    this.gaps.push({ a, b, noticedMs: nowMs });
    this.c.inFlight += b - a + 1;
    while (this.gaps.length > this.maxGaps) {
      const g = this.gaps.shift()!;
      this.declareLost(g.a, g.b);
    }
  }

  private declareLost(a: number, b: number): void {
    const n = b - a + 1;
    this.c.inFlight -= n;
    this.c.lost += n;
    this.declaredLost += n;
    addRange(this.lostRanges, a, b);
  }

  private removeFromGaps(s: number): boolean {
    return subtract(this.gaps, s, s).length > 0;
  }

  private getBit(s: number): boolean {
    const i = s & (this.window - 1);
    return (this.bits[i >> 3]! & (1 << (i & 7))) !== 0;
  }
  private setBit(s: number): void {
    const i = s & (this.window - 1);
    this.bits[i >> 3]! |= 1 << (i & 7);
  }
  private clearBit(s: number): void {
    const i = s & (this.window - 1);
    this.bits[i >> 3]! &= ~(1 << (i & 7));
  }

  /** Clears the bitmap slots of [a, b], the window moving onto them: whole bytes at a time. */
  private clearBits(a: number, b: number): void {
    if (b - a + 1 >= this.window) {
      this.bits.fill(0);
      return;
    }
    // At most a window's worth of slots, possibly wrapping around the ring once.
    let s = a;
    while (s <= b && (s & 7) !== 0) this.clearBit(s++);
    while (b - s + 1 >= 8) {
      const i = (s & (this.window - 1)) >> 3;
      const bytes = Math.min((b - s + 1) >> 3, this.bits.length - i);
      this.bits.fill(0, i, i + bytes);
      s += bytes * 8;
    }
    while (s <= b) this.clearBit(s++);
  }
}

function removeFromRanges(ranges: Range[], s: number): boolean {
  return subtract(ranges, s, s).length > 0;
}

/** How many of r's numbers fall in [lo, hi]. */
function overlap(r: Range, lo: number, hi: number): number {
  return Math.max(0, Math.min(r.b, hi) - Math.max(r.a, lo) + 1);
}
