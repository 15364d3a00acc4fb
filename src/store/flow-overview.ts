import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { bucketIndex } from '../stats/histogram.js';
import { HOUR, MINUTE } from './aggregate.js';
import { representative } from './codec.js';
import { newScratch, percentilesOf, type MinutePart } from './overview.js';
import type { FlowOverview } from './types.js';

/**
 * The overview of every flow at once (GET /api/v1/flows): the window and per-minute points of a range of
 * raw flow intervals, from one read of every flow series' rows instead of a window and a series query
 * per flow. The figures are the ones flowWindow and flowSeries give over a range they read from raw rows
 * (LatencyHistogram's percentiles over the merged intervals: the bucket at the rank, clamped to the exact
 * min and max), computed over flat arrays of buckets instead of a merged histogram per flow and minute.
 */

/** A raw flow interval as the overview reads it: its series' key (flowKey), counts it needs, latencies. */
export interface KeyedFlowRow {
  key: string;
  time: number;
  received: number;
  lost: number;
  /** codec.ts encodeHistogram's bytes. */
  latency: Uint8Array;
}

/** How long the work runs before letting the event loop go: probes run on the same thread. */
const SLICE_MS = 5;
/** Longest range: raw flow rows are read for it, and the router asks for an hour. */
export const FLOW_OVERVIEW_MAX_MS = 6 * HOUR;

/** Checks an overview's range: whole minutes, to after from, at most `maxMs` long. */
export function checkOverviewRange(from: number, to: number, maxMs: number): void {
  if (!Number.isFinite(from) || !Number.isFinite(to) || from % MINUTE !== 0 || to % MINUTE !== 0)
    throw new RangeError(
      `an overview covers whole minutes: from ${from} and to ${to} must be multiples of 60000`,
    );
  if (to <= from) throw new RangeError(`to (${to}) must be after from (${from})`);
  if (to - from > maxMs) throw new RangeError(`an overview covers at most ${maxMs / HOUR} h`);
}

/** Histogram buckets of many intervals, end to end: indices and counts. */
export class Buckets {
  idx = new Uint16Array(4096);
  cnt = new Uint32Array(4096);
  len = 0;

  push(i: number, c: number): void {
    if (this.len === this.idx.length) {
      const idx = new Uint16Array(this.len * 2);
      const cnt = new Uint32Array(this.len * 2);
      idx.set(this.idx);
      cnt.set(this.cnt);
      [this.idx, this.cnt] = [idx, cnt];
    }
    this.idx[this.len] = i;
    this.cnt[this.len++] = c;
  }
}

/**
 * Appends the buckets of an encoded histogram (codec.ts encodeHistogram) to `out` and says its count,
 * min and max: what decodeHistogram reads, without a LatencyHistogram per interval.
 */
export function readHistogramBuckets(buf: Uint8Array, out: Buckets): { n: number; min: number; max: number } {
  let i = 0;
  const uint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (i >= buf.length) throw new RangeError('codec: truncated data');
      const b = buf[i++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 0x80;
    }
  };
  const n = uint();
  if (n === 0) return { n, min: NaN, max: NaN };
  const min = uint();
  if (n === 1) {
    out.push(bucketIndex(min), 1);
    return { n, min, max: min };
  }
  const max = min + uint();
  uint(); // the sum
  const nb = uint();
  let prev = 0;
  for (let k = 0; k < nb; k++) {
    prev += uint();
    out.push(prev, uint());
  }
  return { n, min, max };
}

const TWO_32 = 2 ** 32;
let sortScratch = new Float64Array(1024);

/** LatencyHistogram.percentile(p) of the buckets [lo, hi) of b, n runs in them, clamped to [min, max]. */
function percentileOfRange(
  b: Buckets,
  lo: number,
  hi: number,
  n: number,
  p: number,
  min: number,
  max: number,
): number {
  if (n === 0) return NaN;
  const len = hi - lo;
  if (sortScratch.length < len) sortScratch = new Float64Array(Math.max(len, sortScratch.length * 2));
  const v = sortScratch.subarray(0, len);
  for (let k = 0; k < len; k++) v[k] = b.idx[lo + k]! * TWO_32 + b.cnt[lo + k]!;
  v.sort();
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  let seen = 0;
  for (let k = 0; k < len; k++) {
    seen += v[k]! % TWO_32;
    if (seen >= rank) return Math.min(max, Math.max(min, representative(Math.floor(v[k]! / TWO_32))));
  }
  return max;
}

const seconds = (ns: number): number | null => (Number.isFinite(ns) ? ns / 1e9 : null);

/**
 * For each key, in order, over [from, to): the window over every row and a point per minute. `rows`
 * are the raw intervals of every flow series with from <= time < to (rows of keys not asked for are
 * skipped), in any order.
 */
export async function flowOverviewOf(
  keys: readonly string[],
  from: number,
  to: number,
  rows: readonly KeyedFlowRow[],
): Promise<FlowOverview[]> {
  const steps = (to - from) / MINUTE;
  const byKey = new Map<string, KeyedFlowRow[]>();
  for (const k of keys) if (!byKey.has(k)) byKey.set(k, []);
  for (const r of rows) if (r.time >= from && r.time < to) byKey.get(r.key)?.push(r);
  // The engines send rows in no set order (in practice series by series, each in time order).
  for (const list of byKey.values())
    for (let k = 1; k < list.length; k++)
      if (list[k]!.time < list[k - 1]!.time) {
        list.sort((a, b) => a.time - b.time);
        break;
      }
  const scratch = newScratch();
  const b = new Buckets();
  const out: FlowOverview[] = [];
  let slice = performance.now() + SLICE_MS;
  for (const key of keys) {
    const list = byKey.get(key)!; // in time order
    b.len = 0;
    let received = 0;
    let lost = 0;
    let n = 0;
    let min = Infinity;
    let max = -Infinity;
    const points: FlowOverview['points'] = new Array(steps);
    let i = 0;
    for (let k = 0; k < steps; k++) {
      const time = from + k * MINUTE;
      const lo = b.len;
      let mn = 0;
      let mmin = Infinity;
      let mmax = -Infinity;
      let mlost = 0;
      while (i < list.length && list[i]!.time < time + MINUTE) {
        const r = list[i++]!;
        received += r.received;
        mlost += r.lost;
        const h = readHistogramBuckets(r.latency, b);
        if (h.n > 0) {
          mn += h.n;
          mmin = Math.min(mmin, h.min);
          mmax = Math.max(mmax, h.max);
        }
      }
      lost += mlost;
      n += mn;
      min = Math.min(min, mmin);
      max = Math.max(max, mmax);
      points[k] = {
        time,
        p50: seconds(percentileOfRange(b, lo, b.len, mn, 50, mmin, mmax)),
        failures: mlost,
      };
    }
    const all: MinutePart = {
      time: from,
      runs: n,
      failures: 0,
      n,
      min,
      max,
      p50: NaN,
      idx: b.idx,
      cnt: b.cnt,
      lo: 0,
      hi: b.len,
    };
    const [p50, p95] = percentilesOf([all], [50, 95], scratch);
    const [p99] = percentilesOf([all], [99], scratch);
    out.push({
      window: {
        p50: seconds(p50!),
        p95: seconds(p95!),
        p99: seconds(p99!),
        lossRatio: received + lost > 0 ? lost / (received + lost) : null,
        received,
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
