import { bucketIndex } from '../stats/histogram.js';
import { MINUTE } from './aggregate.js';
import { durationNs } from './backend.js';
import { representative } from './codec.js';
import type { ProbeRecord, TargetOverview } from './types.js';

/**
 * The last hour of every probe target this store wrote, by minute, in memory: what GET /api/v1/targets
 * answers from without reading the store (overview.ts decides when it may).
 *
 * Per target and minute: runs, failures, the exact min and max latency and the minute's p50 (kept once
 * known). Per target, the latency bucket of every successful run of its last 60 minutes, as one sorted
 * Uint32Array of `bucket * 64 + slot` (slot: the minute's place in a ring of 64), so the hour's p50 and
 * p95 are a look-up at a rank, and a minute leaving the hour is one filtering pass. Runs of a minute that
 * has not ended wait, unsorted, after the sorted ones ("pending"); they are merged in when the target's
 * next minute begins. The percentiles are LatencyHistogram's over the same runs (bucket midpoints
 * clamped to the exact min and max), so they equal what probeWindow and probeSeries give from raw runs.
 *
 * Memory: 36 bytes per target-minute (64 of them, arrays sized to the next power of two of targets) and 4
 * bytes per successful run of the hour (with up to 2x room): bench/overview.mjs measured 5.7 KB a target at
 * 10,000 targets every 10 s and 18.3 KB at 1,000 every 1 s. bytes() says what it holds.
 */

/** Minutes a target keeps: the hour a call asks for, ending with the current minute. */
export const RECENT_MINUTES = 60;
const SLOTS = 64;
const SLOT_BITS = 6;
const SLOT_MASK = SLOTS - 1;

/** Scratch space for merging pending runs into the sorted ones. */
let scratch = new Uint32Array(1024);

/** The value at 1-based `rank` of the merged, tag-filtered sorted runs A = buf[0, na) and B = buf[na, na + nb). */
function kthOfTwo(buf: Uint32Array, na: number, nb: number, rank: number): number {
  // i runs taken from A and rank - i from B, with A[i - 1] <= B[rank - i] and B[rank - i - 1] <= A[i].
  let lo = Math.max(0, rank - nb);
  let hi = Math.min(rank, na);
  while (lo < hi) {
    const i = (lo + hi) >>> 1;
    const j = rank - i;
    // Too few from A: A[i] comes before B[j - 1].
    if (i < na && j > 0 && buf[i]! < buf[na + j - 1]!) lo = i + 1;
    else hi = i;
  }
  const i = lo;
  const j = rank - i;
  const a = i > 0 ? buf[i - 1]! : -1;
  const b = j > 0 ? buf[na + j - 1]! : -1;
  return a > b ? a : b;
}

export class RecentMinutes {
  private readonly ids = new Map<string, number>();
  private cap = 0;
  /** Per target x slot: the minute held (Unix ms / MINUTE), or -1. */
  private minute = new Int32Array(0);
  private runs = new Uint32Array(0);
  private fails = new Uint32Array(0);
  private min = new Float64Array(0);
  private max = new Float64Array(0);
  /** The minute's p50 (ns), NaN until known (and again after a write into it). */
  private p50 = new Float64Array(0);
  /** Per target: sorted runs, then pending ones. */
  private buf: Uint32Array[] = [];
  private sortedLen: number[] = [];
  private pendingLen: number[] = [];
  private pendingSorted: boolean[] = [];
  /** Per target: the newest minute written. */
  private newest: number[] = [];
  private maxNewest = -Infinity;

  /**
   * The earliest minute start (Unix ms) that every target still holds as written: a call whose range
   * starts at or after it finds all it needs here.
   */
  get floor(): number {
    return (this.maxNewest - (RECENT_MINUTES - 1)) * MINUTE;
  }

  /** Bytes held (typed arrays and their capacity), for the memory figure. */
  bytes(): number {
    let n = this.cap * SLOTS * (4 + 4 + 4 + 8 + 8 + 8);
    for (const b of this.buf) n += b.byteLength;
    return n;
  }

  get targets(): number {
    return this.ids.size;
  }

  private target(name: string): number {
    let id = this.ids.get(name);
    if (id !== undefined) return id;
    id = this.ids.size;
    this.ids.set(name, id);
    if (id >= this.cap) this.grow(Math.max(64, this.cap * 2));
    this.minute.fill(-1, id * SLOTS, (id + 1) * SLOTS);
    this.buf.push(new Uint32Array(16));
    this.sortedLen.push(0);
    this.pendingLen.push(0);
    this.pendingSorted.push(true);
    this.newest.push(-Infinity);
    return id;
  }

  private grow(cap: number): void {
    const n = cap * SLOTS;
    const copy = <T extends Int32Array | Uint32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.minute = copy(this.minute, (k) => new Int32Array(k));
    this.runs = copy(this.runs, (k) => new Uint32Array(k));
    this.fails = copy(this.fails, (k) => new Uint32Array(k));
    this.min = copy(this.min, (k) => new Float64Array(k));
    this.max = copy(this.max, (k) => new Float64Array(k));
    this.p50 = copy(this.p50, (k) => new Float64Array(k));
    this.cap = cap;
  }

  add(records: readonly ProbeRecord[]): void {
    for (const r of records) {
      const id = this.target(r.name);
      const m = Math.floor(Math.round(r.time) / MINUTE);
      const newest = this.newest[id]!;
      if (m > newest) {
        this.seal(id);
        this.newest[id] = m;
        if (m > this.maxNewest) this.maxNewest = m;
        this.evictBefore(id, m - (RECENT_MINUTES - 1));
      } else if (m < newest - (RECENT_MINUTES - 1)) continue; // older than what it keeps: the store has it
      const s = m & SLOT_MASK;
      const b = id * SLOTS + s;
      if (this.minute[b] !== m) {
        this.minute[b] = m;
        this.runs[b] = 0;
        this.fails[b] = 0;
        this.min[b] = Infinity;
        this.max[b] = -Infinity;
      }
      this.runs[b]!++;
      this.p50[b] = NaN;
      if (!r.ok) {
        this.fails[b]!++;
        continue;
      }
      const v = durationNs(r.durationSeconds); // as the raw rows hold it
      if (v < this.min[b]!) this.min[b] = v;
      if (v > this.max[b]!) this.max[b] = v;
      let buf = this.buf[id]!;
      const at = this.sortedLen[id]! + this.pendingLen[id]!;
      if (at === buf.length) {
        const bigger = new Uint32Array(buf.length * 2);
        bigger.set(buf);
        this.buf[id] = buf = bigger;
      }
      buf[at] = (bucketIndex(v) << SLOT_BITS) | s;
      this.pendingLen[id]!++;
      this.pendingSorted[id] = false;
    }
  }

  private sortPending(id: number): void {
    if (this.pendingSorted[id]) return;
    const na = this.sortedLen[id]!;
    this.buf[id]!.subarray(na, na + this.pendingLen[id]!).sort();
    this.pendingSorted[id] = true;
  }

  /** Merges the pending runs into the sorted ones (the minute they were in has ended). */
  private seal(id: number): void {
    const nb = this.pendingLen[id]!;
    if (nb === 0) return;
    this.sortPending(id);
    const buf = this.buf[id]!;
    const na = this.sortedLen[id]!;
    // The minutes' p50 while their runs are all pending: one walk over a few runs, not over the hour.
    for (let k = na; k < na + nb; k++) {
      const s = buf[k]! & SLOT_MASK;
      if (Number.isNaN(this.p50[id * SLOTS + s]!)) this.slotP50(id, s);
    }
    if (scratch.length < nb) scratch = new Uint32Array(Math.max(nb, scratch.length * 2));
    scratch.set(buf.subarray(na, na + nb));
    let i = na - 1;
    let j = nb - 1;
    let w = na + nb - 1;
    while (j >= 0) buf[w--] = i >= 0 && buf[i]! > scratch[j]! ? buf[i--]! : scratch[j--]!;
    this.sortedLen[id] = na + nb;
    this.pendingLen[id] = 0;
  }

  /** Drops the minutes before `first` (after a seal: nothing pending). */
  private evictBefore(id: number, first: number): void {
    let dropped = 0;
    for (let s = 0; s < SLOTS; s++) {
      const b = id * SLOTS + s;
      const m = this.minute[b]!;
      if (m === -1 || m >= first) continue;
      this.minute[b] = -1;
      const ok = this.runs[b]! - this.fails[b]!;
      if (ok > 0) {
        dropped += ok;
        this.evictMask[s] = 1;
      }
    }
    if (dropped === 0) return;
    let buf = this.buf[id]!;
    const n = this.sortedLen[id]!;
    let w = 0;
    for (let k = 0; k < n; k++) {
      const e = buf[k]!;
      if (this.evictMask[e & SLOT_MASK] === 0) buf[w++] = e;
    }
    this.evictMask.fill(0);
    this.sortedLen[id] = w;
    // An hour that shrank (a longer interval, a target gone quiet) gives its memory back.
    if (buf.length > 64 && w < buf.length / 4) {
      buf = buf.slice(0, Math.max(16, w * 2));
      this.buf[id] = buf;
    }
  }

  private readonly evictMask = new Uint8Array(SLOTS);
  private readonly rangeMask = new Uint8Array(SLOTS);

  /** The p50 (ns) of minute slot s of target id, as LatencyHistogram.percentile(50) gives it; kept. */
  private slotP50(id: number, s: number): number {
    const b = id * SLOTS + s;
    const ok = this.runs[b]! - this.fails[b]!;
    if (ok === 0) return NaN;
    const rank = Math.max(1, Math.ceil(0.5 * ok));
    this.sortPending(id);
    const buf = this.buf[id]!;
    const na = this.sortedLen[id]!;
    const nb = this.pendingLen[id]!;
    let inPending = 0;
    for (let k = na; k < na + nb; k++) if ((buf[k]! & SLOT_MASK) === s) inPending++;
    let found = -1;
    if (inPending === ok) {
      // All of the minute is pending (the minute in progress, or one just ended).
      let seen = 0;
      for (let k = na; k < na + nb && found < 0; k++)
        if ((buf[k]! & SLOT_MASK) === s && ++seen === rank) found = buf[k]!;
    } else {
      let seen = 0;
      let i = 0;
      let j = na;
      while (found < 0 && (i < na || j < na + nb)) {
        const e = j >= na + nb || (i < na && buf[i]! <= buf[j]!) ? buf[i++]! : buf[j++]!;
        if ((e & SLOT_MASK) === s && ++seen === rank) found = e;
      }
    }
    const v = Math.min(this.max[b]!, Math.max(this.min[b]!, representative(found >>> SLOT_BITS)));
    this.p50[b] = v;
    return v;
  }

  /**
   * The overview of one name over [from, to) (whole minutes, from >= floor), or undefined when this
   * store wrote nothing for it.
   */
  overview(name: string, from: number, to: number): TargetOverview | undefined {
    const id = this.ids.get(name);
    if (id === undefined) return undefined;
    const fromM = from / MINUTE;
    const steps = (to - from) / MINUTE;
    const range = this.rangeMask.fill(0);
    let runs = 0;
    let failures = 0;
    let min = Infinity;
    let max = -Infinity;
    const points: TargetOverview['points'] = new Array(steps);
    for (let k = 0; k < steps; k++) {
      const m = fromM + k;
      const s = m & SLOT_MASK;
      const b = id * SLOTS + s;
      if (this.minute[b] !== m) {
        points[k] = { time: m * MINUTE, p50: null, failures: 0, runs: 0 };
        continue;
      }
      range[s] = 1;
      const r = this.runs[b]!;
      const f = this.fails[b]!;
      runs += r;
      failures += f;
      let p50: number | null = null;
      if (r > f) {
        if (this.min[b]! < min) min = this.min[b]!;
        if (this.max[b]! > max) max = this.max[b]!;
        const v = this.p50[b]!;
        p50 = seconds(Number.isNaN(v) ? this.slotP50(id, s) : v);
      }
      points[k] = { time: m * MINUTE, p50, failures: f, runs: r };
    }
    const ok = runs - failures;
    let p50: number | null = null;
    let p95: number | null = null;
    if (ok > 0) {
      this.sortPending(id);
      const buf = this.buf[id]!;
      const na = this.sortedLen[id]!;
      const nb = this.pendingLen[id]!;
      const r50 = Math.max(1, Math.ceil(0.5 * ok));
      const r95 = Math.max(1, Math.ceil(0.95 * ok));
      let e50: number;
      let e95: number;
      if (na + nb === ok) {
        // Everything it holds is in the range (the usual case: the range is the hour it keeps).
        e50 = kthOfTwo(buf, na, nb, r50);
        e95 = kthOfTwo(buf, na, nb, r95);
      } else {
        e50 = -1;
        e95 = -1;
        let seen = 0;
        let i = 0;
        let j = na;
        while (e95 < 0 && (i < na || j < na + nb)) {
          const e = j >= na + nb || (i < na && buf[i]! <= buf[j]!) ? buf[i++]! : buf[j++]!;
          if (range[e & SLOT_MASK] === 0) continue;
          seen++;
          if (seen === r50) e50 = e;
          if (seen === r95) e95 = e;
        }
      }
      const clamp = (e: number) => Math.min(max, Math.max(min, representative(e >>> SLOT_BITS)));
      p50 = seconds(clamp(e50));
      p95 = seconds(clamp(e95));
    }
    return {
      window: { runs, failures, successRatio: runs > 0 ? (runs - failures) / runs : null, p50, p95 },
      points,
    };
  }
}

/** Whole ns as seconds: the JSON of the answer stays short (bucket midpoints end in .5 ns). */
export const seconds = (ns: number): number | null => (Number.isNaN(ns) ? null : Math.round(ns) / 1e9);
