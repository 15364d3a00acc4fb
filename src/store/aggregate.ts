import type { SchedulePoint, ScheduleSeries, Series, SeriesPoint } from './series.js';
import { LatencyHistogram } from '../stats/histogram.js';
import { representative, type Bucket, type PhaseSums } from './codec.js';
import type { Retention } from './config.js';

/**
 * Turning raw rows and rollup buckets into series and windows: the engine-neutral half of the store.
 * Every percentile comes from a merged LatencyHistogram (within 0.1 % of the exact value).
 */

export type Resolution = Series['resolution'];

/** A series type's code: 'p' probe target, 'f' flow (coalminer side), 'c' a canary's schedule with one coalminer. */
export type SeriesCode = 'p' | 'f' | 'c';

/** What a bucket's `counts` mean for each series type. */
export interface SeriesType {
  code: SeriesCode;
  nCounts: number;
  /** How many counts the type's rollup blocks of format 3/4 hold (codec.ts decodeBlock). */
  legacyCounts: number;
  /** Index of a gauge among the counts (the later value wins on merge), or -1. */
  gauge: number;
  /** Indices of gauges merged by their maximum (the worst moment of a step stays visible). */
  maxGauges: readonly number[];
}
/** counts = [runs, failures] */
export const PROBE: SeriesType = { code: 'p', nCounts: 2, legacyCounts: 2, gauge: -1, maxGauges: [] };
/** counts = [received, lost, duplicated, reordered, late, sendFailed, inFlight, droppedLocally] */
export const FLOW: SeriesType = { code: 'f', nCounts: 8, legacyCounts: 7, gauge: 6, maxGauges: [] };
/**
 * counts = [due, attempted, behind (pings), behind (ms)]: the canary's side of a flow. The two behind
 * gauges merge by maximum, so a step shows how far behind schedule the canary fell at worst within it.
 */
export const SCHEDULE: SeriesType = { code: 'c', nCounts: 4, legacyCounts: 4, gauge: -1, maxGauges: [2, 3] };

export const SERIES_TYPES = { p: PROBE, f: FLOW, c: SCHEDULE } as const satisfies Record<
  SeriesCode,
  SeriesType
>;

export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

/** Tier geometry: a rollup block holds the buckets of one hour (1m tier) or one day (1h tier). */
export const TIERS = {
  '1m': { id: 1, bucketMs: MINUTE, blockMs: HOUR },
  '1h': { id: 2, bucketMs: HOUR, blockMs: DAY },
} as const;
export type RollupTier = keyof typeof TIERS;

/** Raw ranges up to this long are answered from raw rows, whatever the step. */
export const RAW_RANGE_MS = 6 * HOUR;
/** A series has at most this many points. */
export const MAX_POINTS = 20_000;
export const HEATMAP_BANDS = 24;

export const floorTo = (t: number, unit: number): number => Math.floor(t / unit) * unit;

/**
 * Which tier answers a query: raw for short ranges or sub-minute steps (while raw is kept), 1-minute
 * rollups for steps under an hour, else 1-hour rollups.
 */
export function chooseResolution(
  from: number,
  to: number,
  stepMs: number,
  nowMs: number,
  retention: Retention,
): Resolution {
  const range = to - from;
  const rawKept = from >= nowMs - retention.raw;
  if (rawKept && (range <= RAW_RANGE_MS || stepMs < MINUTE)) return 'raw';
  const minuteKept = from >= nowMs - retention['1m'];
  if (stepMs < HOUR && (minuteKept || stepMs < MINUTE)) return '1m';
  return '1h';
}

/** Checks a query's range and step; returns the aligned range and step for the resolution. */
export function alignQuery(
  from: number,
  to: number,
  stepMs: number,
  resolution: Resolution,
): { from: number; to: number; step: number } {
  for (const [k, v] of [
    ['from', from],
    ['to', to],
    ['step', stepMs],
  ] as const)
    if (!Number.isFinite(v)) throw new RangeError(`${k} must be a number of ms (got ${v})`);
  if (to <= from) throw new RangeError(`to (${to}) must be after from (${from})`);
  if (stepMs <= 0) throw new RangeError(`step must be more than 0 ms (got ${stepMs})`);
  let step = Math.round(stepMs);
  if (resolution !== 'raw') {
    // Rollup buckets cannot be split: steps and edges are whole buckets.
    const unit = TIERS[resolution].bucketMs;
    step = Math.max(unit, Math.round(step / unit) * unit);
    from = floorTo(from, unit);
    to = Math.ceil(to / unit) * unit;
  }
  if ((to - from) / step > MAX_POINTS)
    throw new RangeError(
      `a series has at most ${MAX_POINTS} points: use a step of at least ${Math.ceil((to - from) / MAX_POINTS)} ms`,
    );
  return { from, to, step };
}

/** One raw probe run, as the aggregation needs it. */
export interface RawProbeRow {
  time: number;
  ok: boolean;
  durationNs: number;
  /** Nanoseconds per phase. */
  phases: Record<string, number> | null;
}

/** One raw flow interval (counts as FLOW), or one raw schedule interval (counts as SCHEDULE, empty hist). */
export interface RawFlowRow {
  time: number;
  counts: number[];
  hist: LatencyHistogram;
}

/** A step's accumulated counts, histogram and phases. */
export class Accumulator {
  readonly counts: number[];
  readonly hist = new LatencyHistogram();
  phases: PhaseSums | undefined;
  private gaugeTime = -Infinity;

  constructor(private readonly type: SeriesType) {
    this.counts = new Array<number>(type.nCounts).fill(0);
  }

  addProbe(r: RawProbeRow): void {
    this.counts[0]! += 1;
    if (r.ok) this.hist.record(r.durationNs);
    else this.counts[1]! += 1;
    if (r.phases) {
      this.phases ??= new Map();
      for (const [name, ns] of Object.entries(r.phases)) {
        const p = this.phases.get(name);
        if (p) {
          p.n++;
          p.sumNs += ns;
        } else this.phases.set(name, { n: 1, sumNs: ns });
      }
    }
  }

  addFlow(r: RawFlowRow): void {
    this.addCounts(r.time, r.counts);
    this.hist.merge(r.hist);
  }

  addBucket(b: Bucket): void {
    this.addCounts(b.time, b.counts);
    this.hist.merge(b.hist);
    if (b.phases) {
      this.phases ??= new Map();
      for (const [name, s] of b.phases) {
        const p = this.phases.get(name);
        if (p) {
          p.n += s.n;
          p.sumNs += s.sumNs;
        } else this.phases.set(name, { n: s.n, sumNs: s.sumNs });
      }
    }
  }

  private addCounts(time: number, counts: readonly number[]): void {
    for (let k = 0; k < this.type.nCounts; k++) {
      if (k === this.type.gauge) {
        if (time >= this.gaugeTime) this.counts[k] = counts[k] ?? 0;
      } else if (this.type.maxGauges.includes(k)) this.counts[k] = Math.max(this.counts[k]!, counts[k] ?? 0);
      else this.counts[k]! += counts[k] ?? 0;
    }
    this.gaugeTime = Math.max(this.gaugeTime, time);
  }

  toBucket(time: number): Bucket {
    const b: Bucket = { time, counts: [...this.counts], hist: this.hist };
    if (this.phases && this.phases.size > 0) b.phases = this.phases;
    return b;
  }
}

/** Accumulators for consecutive steps of [from, to). */
export class Steps {
  readonly accs: Accumulator[];

  constructor(
    private readonly type: SeriesType,
    readonly from: number,
    readonly to: number,
    readonly step: number,
  ) {
    const n = Math.max(1, Math.ceil((to - from) / step));
    this.accs = Array.from({ length: n }, () => new Accumulator(type));
  }

  /** The accumulator for time t, or undefined outside [from, to). */
  at(t: number): Accumulator | undefined {
    if (t < this.from || t >= this.to) return undefined;
    return this.accs[Math.floor((t - this.from) / this.step)];
  }
}

const sec = (ns: number): number | null => (Number.isFinite(ns) ? ns / 1e9 : null);

/** Log-spaced heatmap edges (seconds) spanning every successful sample of the series. */
function heatmapBounds(accs: readonly Accumulator[]): number[] | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of accs)
    if (a.hist.count > 0) {
      lo = Math.min(lo, a.hist.min);
      hi = Math.max(hi, a.hist.max);
    }
  if (!Number.isFinite(lo)) return undefined;
  lo = Math.max(lo, 1);
  if (hi <= lo) return [lo / 1e9, hi / 1e9 + 1e-9];
  const bounds: number[] = [];
  const ratio = hi / lo;
  for (let k = 0; k <= HEATMAP_BANDS; k++) bounds.push((lo * ratio ** (k / HEATMAP_BANDS)) / 1e9);
  bounds[HEATMAP_BANDS] = hi / 1e9;
  return bounds;
}

function heatmapCounts(h: LatencyHistogram, boundsNs: readonly number[]): number[] {
  const out = new Array<number>(boundsNs.length - 1).fill(0);
  if (h.count === 0) return out;
  const { b } = h.toJSON();
  for (const [i, c] of b) {
    const v = Math.min(h.max, Math.max(h.min, representative(i)));
    // Last band whose lower edge is at or below v; the top edge belongs to the last band.
    let k = out.length - 1;
    while (k > 0 && v < boundsNs[k]!) k--;
    out[k]! += c;
  }
  return out;
}

/** The Series of accumulated steps. */
export function toSeries(type: SeriesType, steps: Steps, resolution: Resolution): Series {
  const bounds = heatmapBounds(steps.accs);
  const boundsNs = bounds?.map((s) => s * 1e9);
  const points: SeriesPoint[] = steps.accs.map((a, k) => {
    const h = a.hist;
    const pct = (p: number) => (h.count > 0 ? sec(h.percentile(p)) : null);
    const point: SeriesPoint = {
      time: steps.from + k * steps.step,
      count: a.counts[0]!,
      p1: pct(1),
      p5: pct(5),
      p50: pct(50),
      p90: pct(90),
      p95: pct(95),
      p99: pct(99),
      max: h.count > 0 ? sec(h.max) : null,
      failures: a.counts[1]!,
    };
    if (type.code === 'f') {
      point.duplicated = a.counts[2]!;
      point.reordered = a.counts[3]!;
      point.late = a.counts[4]!;
      point.droppedLocally = a.counts[7]!;
    }
    if (a.phases && a.phases.size > 0) {
      point.phases = {};
      for (const [name, { n, sumNs }] of a.phases) point.phases[name] = n > 0 ? sumNs / n / 1e9 : 0;
    }
    if (boundsNs) point.heatmap = heatmapCounts(h, boundsNs);
    return point;
  });
  const series: Series = { from: steps.from, to: steps.to, step: steps.step, resolution, points };
  if (bounds) series.heatmapBounds = bounds;
  return series;
}

/** The ScheduleSeries of accumulated SCHEDULE steps. */
export function toScheduleSeries(steps: Steps, resolution: Resolution): ScheduleSeries {
  const points: SchedulePoint[] = steps.accs.map((a, k) => ({
    time: steps.from + k * steps.step,
    due: a.counts[0]!,
    attempted: a.counts[1]!,
    behindSchedule: a.counts[2]!,
    behindScheduleSeconds: a.counts[3]! / 1000,
  }));
  return { from: steps.from, to: steps.to, step: steps.step, resolution, points };
}

export function percentiles(h: LatencyHistogram): {
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
} {
  if (h.count === 0) return { p50: null, p95: null, p99: null, max: null };
  return {
    p50: sec(h.percentile(50)),
    p95: sec(h.percentile(95)),
    p99: sec(h.percentile(99)),
    max: sec(h.max),
  };
}

/** The 1-minute buckets of one hour block from raw rows (in time order). */
export function bucketsFromRaw(
  type: SeriesType,
  blockStart: number,
  bucketMs: number,
  blockMs: number,
  feed: (steps: Steps) => void,
): Bucket[] {
  const steps = new Steps(type, blockStart, blockStart + blockMs, bucketMs);
  feed(steps);
  const out: Bucket[] = [];
  steps.accs.forEach((a, k) => {
    if (a.counts.some((c) => c > 0) || a.hist.count > 0 || a.phases)
      out.push(a.toBucket(blockStart + k * bucketMs));
  });
  return out;
}
