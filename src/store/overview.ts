import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { inflateRawSync } from 'node:zlib';
import { LatencyHistogram } from '../stats/histogram.js';
import { HOUR, MINUTE, PROBE } from './aggregate.js';
import { durationNs } from './backend.js';
import { representative, type Bucket } from './codec.js';
import { RecentMinutes, seconds } from './overview-recent.js';
import type { ProbeRecord, TargetOverview } from './types.js';

/**
 * The overview of every probe target at once (GET /api/v1/targets): per-minute points and the window of
 * a range. Two ways to answer:
 *
 * - From memory (overview-recent.ts), reading no store: the last hour of every target as this store
 *   wrote it. It may when the range starts at or after the minute from which the store holds only this
 *   store's writes (the store was empty when it started, or held runs up to an earlier minute), and no
 *   other agent has been seen on the store (Store.rollup looks at each rollup).
 * - Otherwise (the first hour after starting on a store that had runs, a store shared with other agents,
 *   a range older than the hour kept): from the 1-minute rollups plus what this store wrote since its last
 *   rollup, without raw rows, as follows.
 *
 * A run is in exactly one of the two: the blocks hold what was written before the store's last tier-1
 * rollup finished, the tail what this store wrote after it (cleared when the next one finishes). On a
 * store other agents share, their runs since the last rollup count once one has rolled them up, and this
 * store's tail leaves out its writes from before another agent's rollup started (`rolled_up_to`).
 * Decoding the blocks is what costs (after every rollup each target's current hour is new), so decoded
 * minutes are kept in compact arrays until their block's bytes change.
 */

/** A tier-1 rollup block of a probe series, with the series' key (the target name). */
export interface KeyedBlock {
  key: string;
  sid: number;
  block: number;
  data: Uint8Array;
}

/** Most records the tail holds; past it newer ones are counted in `dropped` (a rollup has not finished for long). */
const TAIL_MAX = 1_000_000;
/** How long a call works before letting the event loop go: probes run on the same thread. */
const SLICE_MS = 5;
/** Longest range an overview covers: one day of 1-minute points. */
const MAX_RANGE_MS = 24 * HOUR;

/** One minute of one series, as the overview needs it: counts and the latency histogram's buckets. */
export interface MinutePart {
  time: number;
  runs: number;
  failures: number;
  /** Successful runs (the histogram's count). */
  n: number;
  min: number;
  max: number;
  /** The minute's p50 (ns), NaN when n is 0: kept so a point costs nothing on the next call. */
  p50: number;
  /**
   * Histogram bucket indices, ascending, and their counts: [lo, hi) of arrays the minutes of a block share
   * (one pair of arrays per block, not per minute, keeps the garbage collector's work down).
   */
  idx: Uint16Array;
  cnt: Uint32Array;
  lo: number;
  hi: number;
}

interface CachedBlock {
  data: Uint8Array;
  /** Earliest minute decoded into parts (earlier ones were outside the range asked for). */
  from: number;
  parts: MinutePart[];
}

/** The buckets (of the tail, or of a block) as parts over one pair of arrays. */
export function toParts(buckets: readonly Bucket[]): MinutePart[] {
  const pairs = buckets.map((b) => b.hist.toJSON().b.sort((x, y) => x[0] - y[0]));
  const size = pairs.reduce((n, p) => n + p.length, 0);
  const idx = new Uint16Array(size);
  const cnt = new Uint32Array(size);
  let at = 0;
  return buckets.map((b, k) => {
    const lo = at;
    for (const [i, c] of pairs[k]!) {
      idx[at] = i;
      cnt[at++] = c;
    }
    const h = b.hist;
    return {
      time: b.time,
      runs: b.counts[0] ?? 0,
      failures: b.counts[1] ?? 0,
      n: h.count,
      min: h.count > 0 ? h.min : Infinity,
      max: h.count > 0 ? h.max : -Infinity,
      p50: h.count > 0 ? h.percentile(50) : NaN,
      idx,
      cnt,
      lo,
      hi: at,
    };
  });
}

/**
 * The minutes at or after `from` of a tier-1 probe block, read straight into parts: codec.ts decodeBlock's
 * format (3-6) without a LatencyHistogram per minute (decodeBlock and toParts took about 1.5 ms for an
 * hour of a target probed every second, and after every rollup each target's current hour is new).
 * overview.test.ts holds the two equal.
 */
export function decodeProbeMinutes(buf: Uint8Array, blockStart: number, from: number): MinutePart[] {
  const format = buf[0];
  if (format !== 3 && format !== 4 && format !== 5 && format !== 6)
    throw new RangeError(`codec: unknown block format ${format}`);
  const raw = format === 4 || format === 6 ? inflateRawSync(buf.subarray(1)) : buf.subarray(1);
  // Varints from raw at cur.i, below cur.end.
  const cur = { i: 0, end: raw.length };
  const uint = (c: { i: number; end: number }): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (c.i >= c.end) throw new RangeError('codec: truncated data');
      const b = raw[c.i++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 0x80;
    }
  };
  const stored = format >= 5 ? uint(cur) : PROBE.legacyCounts;
  const metaLen = uint(cur);
  const idxLen = uint(cur);
  const meta = { i: cur.i, end: cur.i + metaLen };
  const ix = { i: meta.end, end: meta.end + idxLen };
  const count = uint(meta);
  const heads: { time: number; runs: number; failures: number; n: number; nb: number; ones: boolean }[] = [];
  let slot = -1;
  for (let k = 0; k < count; k++) {
    slot += uint(meta) + 1;
    const counts = [0, 0];
    for (let c = 0; c < stored; c++) {
      const v = uint(meta);
      if (c < 2) counts[c] = v;
    }
    const n = uint(meta);
    let nb = 0;
    let ones = false;
    if (n > 0) {
      const shape = uint(meta);
      ones = shape % 2 === 1;
      nb = Math.floor(shape / 2);
    }
    const np = uint(meta);
    for (let q = 0; q < np; q++) {
      if (uint(meta) === 0) {
        const len = uint(meta); // a phase stored by name: skip its bytes
        meta.i += len;
      }
      uint(meta); // runs without the phase; the phase sums are a stream of their own, not read
    }
    heads.push({ time: blockStart + slot * MINUTE, runs: counts[0]!, failures: counts[1]!, n, nb, ones });
  }
  const size = heads.reduce((s, h) => s + (h.time >= from ? h.nb : 0), 0);
  const idx = new Uint16Array(size);
  const cnt = new Uint32Array(size);
  let w = 0;
  const out: MinutePart[] = [];
  for (const h of heads) {
    const keep = h.time >= from;
    const lo = w;
    let prev = 0;
    for (let q = 0; q < h.nb; q++) {
      prev += uint(ix);
      const c = h.ones ? 1 : uint(ix);
      if (keep) {
        idx[w] = prev;
        cnt[w++] = c;
      }
    }
    if (!keep) continue;
    // Rollup histograms keep their buckets only: min, max and the p50 are bucket midpoints.
    let p50 = NaN;
    const rank = Math.max(1, Math.ceil(0.5 * h.n));
    let seen = 0;
    for (let k = lo; k < w && h.n > 0; k++) {
      seen += cnt[k]!;
      if (seen >= rank) {
        p50 = representative(idx[k]!);
        break;
      }
    }
    out.push({
      time: h.time,
      runs: h.runs,
      failures: h.failures,
      n: h.n,
      min: h.n > 0 ? representative(idx[lo]!) : Infinity,
      max: h.n > 0 ? representative(idx[w - 1]!) : -Infinity,
      p50,
      idx,
      cnt,
      lo,
      hi: w,
    });
  }
  return out;
}

/** What this store wrote since its last tier-1 rollup finished: target, start time, duration (NaN: failed). */
class Tail {
  private readonly ids = new Map<string, number>();
  private names: string[] = [];
  private id = new Int32Array(1024);
  private time = new Float64Array(1024);
  private dur = new Float64Array(1024);
  private n = 0;
  /** Records not kept because the tail was full. */
  dropped = 0;
  /** Bumped by every clear, so a reader sees whether a rollup finished while it read the blocks. */
  generation = 0;
  /** Where each write's records begin, and when it was written (the store's clock). */
  private batchStart: number[] = [];
  private batchAt: number[] = [];

  add(records: readonly ProbeRecord[], writtenAt: number): void {
    if (records.length > 0 && this.n < TAIL_MAX) {
      this.batchStart.push(this.n);
      this.batchAt.push(writtenAt);
    }
    for (const r of records) {
      if (this.n >= TAIL_MAX) {
        this.dropped++;
        continue;
      }
      if (this.n === this.id.length) this.grow();
      let id = this.ids.get(r.name);
      if (id === undefined) {
        id = this.names.length;
        this.ids.set(r.name, id);
        this.names.push(r.name);
      }
      this.id[this.n] = id;
      this.time[this.n] = Math.round(r.time);
      this.dur[this.n] = r.ok ? durationNs(r.durationSeconds) : NaN;
      this.n++;
    }
  }

  private grow(): void {
    const size = Math.min(TAIL_MAX, this.id.length * 2);
    const id = new Int32Array(size);
    const time = new Float64Array(size);
    const dur = new Float64Array(size);
    id.set(this.id);
    time.set(this.time);
    dur.set(this.dur);
    [this.id, this.time, this.dur] = [id, time, dur];
  }

  clear(): void {
    this.ids.clear();
    this.names = [];
    this.n = 0;
    this.batchStart = [];
    this.batchAt = [];
    this.generation++;
    // New arrays, never reused: a reader may still hold the old ones (parts() lets the loop go).
    this.id = new Int32Array(1024);
    this.time = new Float64Array(1024);
    this.dur = new Float64Array(1024);
  }

  /**
   * Per target name and minute of [from, to): the tail's runs as parts, but for writes from before
   * `rolledUpTo`: a rollup that started after them (another agent's, on a shared store) holds them.
   */
  async parts(
    from: number,
    to: number,
    wanted: ReadonlySet<string>,
    rolledUpTo: number,
  ): Promise<Map<string, Map<number, MinutePart>>> {
    const hists = new Map<number, Map<number, { h: LatencyHistogram; runs: number; failures: number }>>();
    let batch = -1;
    let skip = false;
    // A snapshot: writes while this lets the event loop go append past n, clear() swaps the arrays.
    const [n, ids, times, durs, names, batchStart, batchAt] = [
      this.n,
      this.id,
      this.time,
      this.dur,
      this.names,
      this.batchStart,
      this.batchAt,
    ];
    let slice = performance.now() + SLICE_MS;
    for (let k = 0; k < n; k++) {
      if (k % 4096 === 0 && performance.now() > slice) {
        await yieldToLoop();
        slice = performance.now() + SLICE_MS;
      }
      while (batch + 1 < batchStart.length && batchStart[batch + 1]! <= k) {
        batch++;
        skip = batchAt[batch]! < rolledUpTo;
      }
      if (skip) continue;
      const t = times[k]!;
      if (t < from || t >= to) continue;
      const id = ids[k]!;
      if (!wanted.has(names[id]!)) continue;
      let byMinute = hists.get(id);
      if (!byMinute) hists.set(id, (byMinute = new Map()));
      const minute = Math.floor(t / MINUTE) * MINUTE;
      let m = byMinute.get(minute);
      if (!m) byMinute.set(minute, (m = { h: new LatencyHistogram(), runs: 0, failures: 0 }));
      m.runs++;
      const d = durs[k]!;
      if (Number.isNaN(d)) m.failures++;
      else m.h.record(d);
    }
    const out = new Map<string, Map<number, MinutePart>>();
    for (const [id, byMinute] of hists) {
      const parts = new Map<number, MinutePart>();
      const minutes = [...byMinute].map(([time, m]) => ({ time, counts: [m.runs, m.failures], hist: m.h }));
      for (const q of toParts(minutes)) parts.set(q.time, q);
      out.set(names[id]!, parts);
    }
    return out;
  }
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);

/** Histogram bucket indices per group (a power of two of them): 64, so a Uint16 index has 1,024 groups. */
const GROUP_BITS = 6;

export interface Scratch {
  /** Counts per group of bucket indices (index >>> GROUP_BITS). */
  groups: Float64Array;
  /** Counts per index within the group of each percentile asked for. */
  fine: Float64Array[];
}

export const newScratch = (): Scratch => ({
  groups: new Float64Array(2 ** (16 - GROUP_BITS)),
  fine: [new Float64Array(2 ** GROUP_BITS), new Float64Array(2 ** GROUP_BITS)],
});

/**
 * The values at percentiles ps (each strictly between 0 and 100, one or two) of the merged
 * histograms of `parts`, as LatencyHistogram.percentile gives them for one histogram holding all their
 * runs: the bucket where the rank falls, clamped to min and max (NaN when there is no run). Two passes
 * over the buckets and no sort: counts by group of 64 indices find each rank's group, then counts by
 * index within it.
 */
export function percentilesOf(
  parts: readonly MinutePart[],
  ps: readonly number[],
  scratch: Scratch,
): number[] {
  let n = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const q of parts) {
    n += q.n;
    if (q.n > 0) {
      min = Math.min(min, q.min);
      max = Math.max(max, q.max);
    }
  }
  if (n === 0) return ps.map(() => NaN);
  const groups = scratch.groups.fill(0);
  for (const q of parts) {
    const { idx, cnt, hi } = q;
    for (let k = q.lo; k < hi; k++) groups[idx[k]! >>> GROUP_BITS]! += cnt[k]!;
  }
  const want = ps.map((p, r) => {
    const rank = Math.max(1, Math.ceil((p / 100) * n));
    let g = 0;
    let before = 0;
    while (g < groups.length - 1 && before + groups[g]! < rank) before += groups[g++]!;
    return { rank, g, before, fine: scratch.fine[r]!.fill(0) };
  });
  // Written out for the two percentiles the overview asks: this loop runs over every bucket of the range.
  const g0 = want[0]?.g ?? -1;
  const g1 = want[1]?.g ?? -1;
  const fine0 = scratch.fine[0]!;
  const fine1 = scratch.fine[1]!;
  const low = 2 ** GROUP_BITS - 1;
  for (const q of parts) {
    const { idx, cnt, hi } = q;
    for (let k = q.lo; k < hi; k++) {
      const g = idx[k]! >>> GROUP_BITS;
      if (g === g0) fine0[idx[k]! & low]! += cnt[k]!;
      if (g === g1) fine1[idx[k]! & low]! += cnt[k]!;
    }
  }
  return want.map(({ rank, g, before, fine }) => {
    let seen = before;
    for (let j = 0; j < fine.length; j++) {
      seen += fine[j]!;
      if (seen >= rank) return Math.min(max, Math.max(min, representative(g * 2 ** GROUP_BITS + j)));
    }
    return max;
  });
}

/** The overview state of one store: the last hour in memory, decoded rollup minutes and the tail. */
export class ProbeOverviewState {
  private readonly tail = new Tail();
  private readonly recent = new RecentMinutes();
  private cache = new Map<string, CachedBlock>();
  /** Minutes from here on hold only what this store wrote; +Infinity until begin(). */
  private coveredFrom = Infinity;
  private shared = false;

  /**
   * Before this store's first write: `priorUntil`, the latest run time the store may already hold
   * (undefined: none). From the minute after it, every run is one this store writes.
   */
  begin(priorUntil: number | undefined): void {
    this.coveredFrom =
      priorUntil === undefined ? -Infinity : Math.floor(priorUntil / MINUTE) * MINUTE + MINUTE;
  }

  /** Another agent writes to this store too: answer from the store from now on. */
  sharedWithOthers(): void {
    this.shared = true;
  }

  /** Whether a call over [from, to) is answered from memory alone. */
  inMemory(from: number): boolean {
    return !this.shared && from >= this.coveredFrom && from >= this.recent.floor;
  }

  /** Bytes the in-memory hour holds, and for how many targets. */
  memory(): { bytes: number; targets: number } {
    return { bytes: this.recent.bytes(), targets: this.recent.targets };
  }

  /** Records the tail could not keep (it is full when rollups stop finishing). */
  get tailDropped(): number {
    return this.tail.dropped;
  }

  /** After the store wrote them, at `writtenAt` (the clock the store's rollups are given). */
  written(records: readonly ProbeRecord[], writtenAt: number): void {
    this.tail.add(records, writtenAt);
    this.recent.add(records);
  }

  /** After a tier-1 rollup finished: everything written so far is in the rollups. */
  rolledUp(): void {
    this.tail.clear();
  }

  /**
   * The overview of each name over [from, to) (whole minutes): one point per minute and the window over
   * every run in the range. `source.blocks` reads the tier-1 probe blocks of every series in
   * [fromBlock, toBlock) in one query; `source.rolledUpTo` is when the store's last rollup (any agent's)
   * that finished had started.
   */
  async read(
    names: readonly string[],
    from: number,
    to: number,
    source: {
      blocks: (fromBlock: number, toBlock: number) => Promise<KeyedBlock[]>;
      rolledUpTo: () => Promise<number | undefined>;
    },
  ): Promise<TargetOverview[]> {
    if (!Number.isFinite(from) || !Number.isFinite(to) || from % MINUTE !== 0 || to % MINUTE !== 0)
      throw new RangeError(
        `an overview covers whole minutes: from ${from} and to ${to} must be multiples of 60000`,
      );
    if (to <= from) throw new RangeError(`to (${to}) must be after from (${from})`);
    if (to - from > MAX_RANGE_MS) throw new RangeError(`an overview covers at most ${MAX_RANGE_MS / HOUR} h`);
    if (this.inMemory(from)) return this.fromMemory(names, from, to);
    const wanted = new Set(names);
    // A rollup that finished while the blocks were read moved tail records into blocks not yet seen:
    // read again, so every record is counted once.
    // Another agent's rollup that finished meanwhile: the same.
    let blocks: KeyedBlock[];
    let generation: number;
    let rolledUpTo: number | undefined;
    let tries = 0;
    let changed: boolean;
    do {
      generation = this.tail.generation;
      rolledUpTo = await source.rolledUpTo();
      blocks = await source.blocks(Math.floor(from / HOUR) * HOUR, to);
      changed = generation !== this.tail.generation || rolledUpTo !== (await source.rolledUpTo());
    } while (changed && ++tries < 3);
    const tail = await this.tail.parts(from, to, wanted, rolledUpTo ?? -Infinity);

    const byName = new Map<string, MinutePart[]>();
    const next = new Map<string, CachedBlock>();
    let slice = performance.now() + SLICE_MS;
    for (const b of blocks) {
      if (!wanted.has(b.key)) continue;
      const id = `${b.sid}:${b.block}`;
      let c = this.cache.get(id);
      if (!c || c.from > from || !sameBytes(c.data, b.data)) {
        const parts = decodeProbeMinutes(b.data, b.block, from);
        // A copy: a driver may hand out views of a buffer it reuses.
        c = { data: Uint8Array.from(b.data), from, parts };
      }
      next.set(id, c);
      let list = byName.get(b.key);
      if (!list) byName.set(b.key, (list = []));
      for (const q of c.parts) if (q.time >= from && q.time < to) list.push(q);
      if (performance.now() > slice) {
        await yieldToLoop();
        slice = performance.now() + SLICE_MS;
      }
    }
    this.cache = next;

    const scratch = newScratch();
    const steps = (to - from) / MINUTE;
    const out: TargetOverview[] = [];
    for (const name of names) {
      const all = byName.get(name) ?? [];
      const fromTail = tail.get(name);
      if (fromTail) all.push(...fromTail.values());
      // Most minutes have one part (one series, rolled up): its p50 is kept. Two or more (the tail's
      // share of a minute, a target whose kind changed) are merged.
      const first: (MinutePart | undefined)[] = new Array<MinutePart | undefined>(steps);
      let more: Map<number, MinutePart[]> | undefined;
      for (const q of all) {
        const k = (q.time - from) / MINUTE;
        const had = first[k];
        if (!had) first[k] = q;
        else {
          more ??= new Map();
          const list = more.get(k);
          if (list) list.push(q);
          else more.set(k, [had, q]);
        }
      }
      let runs = 0;
      let failures = 0;
      const points: TargetOverview['points'] = new Array(steps);
      for (let k = 0; k < steps; k++) {
        const time = from + k * MINUTE;
        const merged = more?.get(k);
        const one = first[k];
        let point: TargetOverview['points'][number];
        if (merged) {
          let r = 0;
          let f = 0;
          for (const q of merged) {
            r += q.runs;
            f += q.failures;
          }
          point = { time, p50: seconds(percentilesOf(merged, [50], scratch)[0]!), failures: f, runs: r };
        } else if (one) point = { time, p50: seconds(one.p50), failures: one.failures, runs: one.runs };
        else point = { time, p50: null, failures: 0, runs: 0 };
        points[k] = point;
        runs += point.runs;
        failures += point.failures;
      }
      const [p50, p95] = percentilesOf(all, [50, 95], scratch);
      out.push({
        window: {
          runs,
          failures,
          successRatio: runs > 0 ? (runs - failures) / runs : null,
          p50: seconds(p50!),
          p95: seconds(p95!),
        },
        points,
      });
      if (performance.now() > slice) {
        await yieldToLoop();
        slice = performance.now() + SLICE_MS;
      }
    }
    return out;
  }

  private async fromMemory(names: readonly string[], from: number, to: number): Promise<TargetOverview[]> {
    this.cache = new Map(); // not needed while memory answers
    const steps = (to - from) / MINUTE;
    const out: TargetOverview[] = new Array(names.length);
    let slice = performance.now() + SLICE_MS;
    for (let i = 0; i < names.length; i++) {
      out[i] = this.recent.overview(names[i]!, from, to) ?? nothingFor(from, steps);
      if (i % 64 === 63 && performance.now() > slice) {
        await yieldToLoop();
        slice = performance.now() + SLICE_MS;
      }
    }
    return out;
  }
}

function nothingFor(from: number, steps: number): TargetOverview {
  const points: TargetOverview['points'] = new Array(steps);
  for (let k = 0; k < steps; k++) points[k] = { time: from + k * MINUTE, p50: null, failures: 0, runs: 0 };
  return { window: { runs: 0, failures: 0, successRatio: null, p50: null, p95: null }, points };
}
