import { ExponentialHistogram } from './exponential-histogram.js';
import type { Attributes, HistogramPoint, MetricData, NumberPoint } from './model.js';

/**
 * The few instruments the OTLP sink needs, each a bounded map from attribute values to a cumulative
 * aggregate. Callers keep the handle `series()` returns (as the Prometheus sink keeps label children),
 * so recording a message allocates nothing. Past `maxSeries` attribute sets a metric sends what
 * follows to one series marked otel.metric.overflow=true, as the OpenTelemetry SDKs do: totals stay
 * right, detail is lost, and `onOverflow` says so once per metric.
 */

export interface MetricDescriptor {
  name: string;
  description: string;
  unit: string;
}

export interface MeterOptions {
  maxBuckets: number;
  maxSeries: number;
  /** Wall-clock time in ns since the epoch. */
  nowNs: () => bigint;
  onOverflow?: (metric: string) => void;
}

const OVERFLOW: Attributes = [['otel.metric.overflow', true]];

interface Series<S> {
  attributes: Attributes;
  startTimeNs: bigint;
  state: S;
}

class SeriesMap<S> {
  private readonly series = new Map<string, Series<S>>();
  private overflow: Series<S> | undefined;

  constructor(
    private readonly descriptor: MetricDescriptor,
    private readonly keys: readonly string[],
    private readonly opts: MeterOptions,
    private readonly make: () => S,
  ) {}

  get(values: readonly string[]): S {
    if (values.length !== this.keys.length)
      throw new Error(`${this.descriptor.name} takes ${this.keys.join(', ')} (got ${values.length} values)`);
    const key = values.join('\u0000');
    const found = this.series.get(key);
    if (found) return found.state;
    if (this.series.size >= this.opts.maxSeries) {
      if (!this.overflow) {
        this.overflow = { attributes: OVERFLOW, startTimeNs: this.opts.nowNs(), state: this.make() };
        this.opts.onOverflow?.(this.descriptor.name);
      }
      return this.overflow.state;
    }
    const s: Series<S> = {
      attributes: this.keys.map((k, i) => [k, values[i]!] as const),
      startTimeNs: this.opts.nowNs(),
      state: this.make(),
    };
    this.series.set(key, s);
    return s.state;
  }

  all(): Series<S>[] {
    const list = [...this.series.values()];
    if (this.overflow) list.push(this.overflow);
    return list;
  }
}

export interface HistogramSeries {
  record(seconds: number): void;
}

export interface CounterSeries {
  add(n: number): void;
}

export interface GaugeSeries {
  set(value: number): void;
}

/** Reads values at collection time (in flight, clock offsets, transport state). */
export type GaugeReader = () => Iterable<readonly [values: readonly string[], value: number]>;

type Instrument = { collect(timeNs: bigint): MetricData | undefined };

export class Meter {
  private readonly instruments: Instrument[] = [];

  constructor(private readonly opts: MeterOptions) {}

  /** A cumulative exponential histogram; negative values are recorded as 0. */
  histogram<K extends string>(
    d: MetricDescriptor,
    keys: readonly K[],
  ): (values: Record<K, string>) => HistogramSeries {
    const map = new SeriesMap(d, keys, this.opts, () => new ExponentialHistogram(this.opts.maxBuckets));
    this.instruments.push({
      collect: (timeNs) => {
        const points: HistogramPoint[] = map
          .all()
          .filter((s) => s.state.count > 0)
          .map((s) => ({
            attributes: s.attributes,
            startTimeNs: s.startTimeNs,
            timeNs,
            histogram: s.state.snapshot(),
          }));
        return points.length ? { type: 'exponentialHistogram', ...d, points } : undefined;
      },
    });
    return (values) => {
      const h = map.get(keys.map((k) => values[k]));
      return { record: (v) => void h.record(v > 0 ? v : 0) };
    };
  }

  /** A cumulative monotonic sum of integers (counts). */
  counter<K extends string>(
    d: MetricDescriptor,
    keys: readonly K[],
  ): (values: Record<K, string>) => CounterSeries {
    const map = new SeriesMap(d, keys, this.opts, () => ({ value: 0 }));
    this.instruments.push({
      collect: (timeNs) => {
        const points: NumberPoint[] = map.all().map((s) => ({
          attributes: s.attributes,
          startTimeNs: s.startTimeNs,
          timeNs,
          value: s.state.value,
        }));
        return points.length ? { type: 'sum', ...d, monotonic: true, integer: true, points } : undefined;
      },
    });
    return (values) => {
      const c = map.get(keys.map((k) => values[k]));
      return { add: (n) => void (c.value += n) };
    };
  }

  /** A gauge holding the last value set. */
  gauge<K extends string>(
    d: MetricDescriptor,
    keys: readonly K[],
    integer: boolean,
  ): (values: Record<K, string>) => GaugeSeries {
    const map = new SeriesMap(d, keys, this.opts, () => ({ value: NaN }));
    this.instruments.push({
      collect: (timeNs) => {
        const points: NumberPoint[] = map
          .all()
          .filter((s) => !Number.isNaN(s.state.value))
          .map((s) => ({ attributes: s.attributes, timeNs, value: s.state.value }));
        return points.length ? { type: 'gauge', ...d, integer, points } : undefined;
      },
    });
    return (values) => {
      const g = map.get(keys.map((k) => values[k]));
      return { set: (v) => void (g.value = v) };
    };
  }

  /** A gauge read at collection time; at most maxSeries points are sent. */
  observedGauge<K extends string>(
    d: MetricDescriptor,
    keys: readonly K[],
    integer: boolean,
    read: GaugeReader,
  ): void {
    let warned = false;
    this.instruments.push({
      collect: (timeNs) => {
        const points: NumberPoint[] = [];
        for (const [values, value] of read()) {
          if (!Number.isFinite(value)) continue;
          if (points.length >= this.opts.maxSeries) {
            if (!warned) this.opts.onOverflow?.(d.name);
            warned = true;
            break;
          }
          points.push({ attributes: keys.map((k, i) => [k, values[i] ?? ''] as const), timeNs, value });
        }
        return points.length ? { type: 'gauge', ...d, integer, points } : undefined;
      },
    });
  }

  /** Every metric with at least one point, as of now. */
  collect(): MetricData[] {
    const timeNs = this.opts.nowNs();
    const out: MetricData[] = [];
    for (const i of this.instruments) {
      const m = i.collect(timeNs);
      if (m) out.push(m);
    }
    return out;
  }
}
