import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { LatencyHistogram } from '../stats/histogram.js';
import { HOUR, MINUTE, PROBE } from './aggregate.js';
import { durationNs } from './backend.js';
import { decodeBlock, representative, type Bucket } from './codec.js';
import type { ProbeRecord, TargetOverview } from './types.js';

/**
 * The overview of every probe target at once (GET /api/v1/targets): per-minute points and the window of
 * a range, from the 1-minute rollups plus what this store wrote since its last rollup, without raw rows.
 *
 * A record is in exactly one of the two: rollups hold what was written before the store's last tier-1
 * rollup finished, the tail holds what this store wrote after it (cleared when the next one finishes).
 * Decoding a block is what costs (inflate and histograms: about 0.3 ms for an hour of a target probed
 * every second), so decoded minutes are kept, compactly, until their block's bytes change; a call then
 * decodes only the blocks the last rollup rewrote.
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
interface MinutePart {
  time: number;
  runs: number;
  failures: number;
  /** Successful runs (the histogram's count). */
  n: number;
  min: number;
  max: number;
  /** The minute's p50 (ns), NaN when n is 0: kept so a point costs nothing on the next call. */
  p50: number;
  /** Histogram bucket indices, ascending, and their counts. */
  idx: Uint16Array;
  cnt: Uint32Array;
}

interface CachedBlock {
  data: Uint8Array;
  /** Earliest minute decoded into parts (earlier ones were outside the range asked for). */
  from: number;
  parts: MinutePart[];
}

function toPart(b: Bucket): MinutePart {
  const h = b.hist;
  const pairs = h.toJSON().b.sort((x, y) => x[0] - y[0]);
  const idx = new Uint16Array(pairs.length);
  const cnt = new Uint32Array(pairs.length);
  pairs.forEach(([i, c], k) => {
    idx[k] = i;
    cnt[k] = c;
  });
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
  };
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

  add(records: readonly ProbeRecord[]): void {
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
    this.generation++;
    if (this.id.length > 1024) {
      this.id = new Int32Array(1024);
      this.time = new Float64Array(1024);
      this.dur = new Float64Array(1024);
    }
  }

  /** Per target name and minute of [from, to): the tail's runs as parts. */
  parts(from: number, to: number, wanted: ReadonlySet<string>): Map<string, Map<number, MinutePart>> {
    const hists = new Map<number, Map<number, { h: LatencyHistogram; runs: number; failures: number }>>();
    for (let k = 0; k < this.n; k++) {
      const t = this.time[k]!;
      if (t < from || t >= to) continue;
      const id = this.id[k]!;
      if (!wanted.has(this.names[id]!)) continue;
      let byMinute = hists.get(id);
      if (!byMinute) hists.set(id, (byMinute = new Map()));
      const minute = Math.floor(t / MINUTE) * MINUTE;
      let m = byMinute.get(minute);
      if (!m) byMinute.set(minute, (m = { h: new LatencyHistogram(), runs: 0, failures: 0 }));
      m.runs++;
      const d = this.dur[k]!;
      if (Number.isNaN(d)) m.failures++;
      else m.h.record(d);
    }
    const out = new Map<string, Map<number, MinutePart>>();
    for (const [id, byMinute] of hists) {
      const parts = new Map<number, MinutePart>();
      for (const [time, m] of byMinute)
        parts.set(time, toPart({ time, counts: [m.runs, m.failures], hist: m.h }));
      out.set(this.names[id]!, parts);
    }
    return out;
  }
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);

/**
 * The value at percentile p of the merged histograms of `parts`, as LatencyHistogram.percentile gives it
 * for one histogram holding all their runs: the bucket where the rank falls, clamped to min and max.
 * Buckets are grouped by power of two first, so only the group holding the rank is sorted.
 */
function percentileOf(parts: readonly MinutePart[], p: number, scratch: Scratch): number {
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
  if (n === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  const groups = scratch.groups.fill(0);
  for (const q of parts) for (let k = 0; k < q.idx.length; k++) groups[q.idx[k]! >>> 10]! += q.cnt[k]!;
  let g = 0;
  let seen = 0;
  while (g < groups.length - 1 && seen + groups[g]! < rank) seen += groups[g++]!;
  let m = 0;
  for (const q of parts)
    for (let k = 0; k < q.idx.length; k++)
      if (q.idx[k]! >>> 10 === g) scratch.keys[m++] = q.idx[k]! * 2 ** 32 + q.cnt[k]!;
  const keys = scratch.keys.subarray(0, m).sort();
  for (const key of keys) {
    seen += key % 2 ** 32;
    if (seen >= rank) return Math.min(max, Math.max(min, representative(Math.floor(key / 2 ** 32))));
  }
  return max;
}

interface Scratch {
  /** Counts per power of two of bucket index (index >>> 10): 64 cover every index a Uint16 holds. */
  groups: Float64Array;
  keys: Float64Array;
}

const seconds = (ns: number): number | null => (Number.isNaN(ns) ? null : ns / 1e9);

/** The overview state of one store: decoded rollup minutes and the tail. */
export class ProbeOverviewState {
  private readonly tail = new Tail();
  private cache = new Map<string, CachedBlock>();

  /** Records the tail could not keep (it is full when rollups stop finishing). */
  get tailDropped(): number {
    return this.tail.dropped;
  }

  /** After the store wrote them. */
  written(records: readonly ProbeRecord[]): void {
    this.tail.add(records);
  }

  /** After a tier-1 rollup finished: everything written so far is in the rollups. */
  rolledUp(): void {
    this.tail.clear();
  }

  /**
   * The overview of each name over [from, to) (whole minutes): one point per minute and the window over
   * every run in the range. `readBlocks` reads the tier-1 probe blocks of every series in
   * [fromBlock, toBlock) in one query.
   */
  async read(
    names: readonly string[],
    from: number,
    to: number,
    readBlocks: (fromBlock: number, toBlock: number) => Promise<KeyedBlock[]>,
  ): Promise<TargetOverview[]> {
    if (!Number.isFinite(from) || !Number.isFinite(to) || from % MINUTE !== 0 || to % MINUTE !== 0)
      throw new RangeError(
        `an overview covers whole minutes: from ${from} and to ${to} must be multiples of 60000`,
      );
    if (to <= from) throw new RangeError(`to (${to}) must be after from (${from})`);
    if (to - from > MAX_RANGE_MS) throw new RangeError(`an overview covers at most ${MAX_RANGE_MS / HOUR} h`);
    const wanted = new Set(names);
    // A rollup that finished while the blocks were read moved tail records into blocks not yet seen:
    // read again, so every record is counted once.
    let blocks: KeyedBlock[];
    let generation: number;
    let tries = 0;
    do {
      generation = this.tail.generation;
      blocks = await readBlocks(Math.floor(from / HOUR) * HOUR, to);
    } while (generation !== this.tail.generation && ++tries < 3);
    const tail = this.tail.parts(from, to, wanted);

    const byName = new Map<string, MinutePart[]>();
    const next = new Map<string, CachedBlock>();
    let slice = performance.now() + SLICE_MS;
    for (const b of blocks) {
      if (!wanted.has(b.key)) continue;
      const id = `${b.sid}:${b.block}`;
      let c = this.cache.get(id);
      if (!c || c.from > from || !sameBytes(c.data, b.data)) {
        const parts = decodeBlock(b.data, b.block, MINUTE, PROBE.nCounts, PROBE.legacyCounts)
          .filter((x) => x.time >= from)
          .map(toPart);
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

    const scratch: Scratch = { groups: new Float64Array(64), keys: new Float64Array(1024) };
    const steps = (to - from) / MINUTE;
    const out: TargetOverview[] = [];
    for (const name of names) {
      const minutes: MinutePart[][] = Array.from({ length: steps }, () => []);
      const all: MinutePart[] = [];
      const add = (q: MinutePart) => {
        minutes[(q.time - from) / MINUTE]!.push(q);
        all.push(q);
      };
      for (const q of byName.get(name) ?? []) add(q);
      for (const q of tail.get(name)?.values() ?? []) add(q);
      let size = 0;
      for (const q of all) size += q.idx.length;
      if (size > scratch.keys.length) scratch.keys = new Float64Array(size);
      let runs = 0;
      let failures = 0;
      const points = minutes.map((parts, k) => {
        let r = 0;
        let f = 0;
        for (const q of parts) {
          r += q.runs;
          f += q.failures;
        }
        runs += r;
        failures += f;
        const p50 = parts.length === 1 ? parts[0]!.p50 : percentileOf(parts, 50, scratch);
        return { time: from + k * MINUTE, p50: seconds(p50), failures: f, runs: r };
      });
      out.push({
        window: {
          runs,
          failures,
          successRatio: runs > 0 ? (runs - failures) / runs : null,
          p50: seconds(percentileOf(all, 50, scratch)),
          p95: seconds(percentileOf(all, 95, scratch)),
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
}
