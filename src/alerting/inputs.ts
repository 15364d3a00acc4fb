import type { Observation } from '../core/types.js';
import type { SequenceCounts } from '../messaging/sequence.js';
import { LatencyHistogram } from '../stats/histogram.js';
import type { DataPoint } from './evaluator.js';
import type { AlertRule } from './rules.js';

/** One live flow's cumulative counts, as a coalminer keeps them (one entry per canary run). */
export interface FlowCountsSource {
  canary: string;
  coalminer: string;
  runId: string;
  counts: SequenceCounts;
}

const SECONDS_PER_DAY = 86_400;

/** What one rule has seen of its target since its previous evaluation. */
interface ProbeWindow {
  runs: number;
  failures: number;
  /** Durations of successful runs, in ns. */
  latency: LatencyHistogram;
}

/** A target's latest run, which a window without a run of its own carries. */
interface LastRun {
  /** When its result came in (ms, on the injected clock). */
  at: number;
  ok: boolean;
  durationNs: number;
  /** ssl_earliest_cert_expiry of the latest run that reported one (Unix seconds). */
  certExpiry?: number;
}

/** How often a target is probed, and how long one run may take. */
export interface TargetTiming {
  name: string;
  intervalMs: number;
  timeoutMs: number;
}

/** What one rule has seen of its flow since its previous evaluation. */
interface FlowWindow {
  latency: LatencyHistogram;
  /** The flows' cumulative counts at the previous evaluation, by run. */
  previous: Map<string, Cumulative>;
}

interface Cumulative {
  received: number;
  /** Declared lost, late ones included: `lost` falls back when a late ping arrives. */
  declaredLost: number;
  duplicated: number;
  reordered: number;
  sendFailed: number;
}

function cumulative(c: SequenceCounts): Cumulative {
  return {
    received: c.received,
    declaredLost: c.lost + c.late,
    duplicated: c.duplicated,
    reordered: c.reordered,
    sendFailed: c.sendFailed,
  };
}

const emptyProbeWindow = (): ProbeWindow => ({ runs: 0, failures: 0, latency: new LatencyHistogram() });

/**
 * The agent's windowed statistics, per rule: each rule's datapoint is everything that happened to its
 * target or flow between its previous evaluation and this one (CloudWatch's "period" is the rule's
 * evaluateEvery). Probe runs and ping latencies are pushed in as they happen; flow counts are pulled
 * from the coalminers at evaluation time and turned into deltas. Memory per rule is one histogram.
 *
 * A target is often probed less often than its rules are evaluated (every 30 s, evaluated every 15 s):
 * a window without a run of its own then carries the target's latest run, which is still the truth
 * about it, instead of being missing data (which `notBreaching` would count as ok, and a continuous
 * outage would flap). Only when no run has come in for interval x 2 + timeout (or ever) is the
 * datapoint missing, for `missingData` to judge. noData rules are not carried: they judge arrivals.
 */
export class AlertInputs {
  readonly #probe = new Map<AlertRule, ProbeWindow>();
  readonly #byTarget = new Map<string, ProbeWindow[]>();
  readonly #flow = new Map<AlertRule, FlowWindow>();
  readonly #byFlow = new Map<string, LatencyHistogram[]>();
  readonly #last = new Map<string, LastRun>();
  /** By target: how old its latest run may be and still be carried (interval x 2 + timeout). */
  readonly #carryMs = new Map<string, number>();
  readonly #counts: () => Iterable<FlowCountsSource>;
  readonly #now: () => number;

  constructor(
    rules: readonly AlertRule[],
    opts: {
      flowCounts: () => Iterable<FlowCountsSource>;
      now: () => number;
      /** The targets' timing; a target not listed has its latest run carried however old it is. */
      targets?: Iterable<TargetTiming>;
    },
  ) {
    this.#counts = opts.flowCounts;
    this.#now = opts.now;
    for (const t of opts.targets ?? []) this.#carryMs.set(t.name, t.intervalMs * 2 + t.timeoutMs);
    for (const rule of rules) {
      if (rule.target !== undefined) {
        const w = emptyProbeWindow();
        this.#probe.set(rule, w);
        const list = this.#byTarget.get(rule.target) ?? [];
        list.push(w);
        this.#byTarget.set(rule.target, list);
      } else {
        const w: FlowWindow = { latency: new LatencyHistogram(), previous: new Map() };
        this.#flow.set(rule, w);
        const key = flowKey(rule.flow.canary, rule.flow.coalminer);
        const list = this.#byFlow.get(key) ?? [];
        list.push(w.latency);
        this.#byFlow.set(key, list);
      }
    }
  }

  /** Whether any rule watches this target (so callers can skip the work). */
  watchesTarget(name: string): boolean {
    return this.#byTarget.has(name);
  }

  observeProbe(o: Observation): void {
    const windows = this.#byTarget.get(o.name);
    if (!windows) return;
    const durationNs = Number(o.result.durationNs);
    const certExpiry = o.result.values?.ssl_earliest_cert_expiry ?? this.#last.get(o.name)?.certExpiry;
    this.#last.set(o.name, {
      at: this.#now(),
      ok: o.result.ok,
      durationNs,
      ...(certExpiry !== undefined && { certExpiry }),
    });
    for (const w of windows) {
      w.runs++;
      if (o.result.ok) w.latency.record(durationNs);
      else w.failures++;
    }
  }

  /** One ping's one-way latency (from its intended send time, clock-corrected), as the coalminer saw it. */
  observeLatency(canary: string, coalminer: string, seconds: number): void {
    const list = this.#byFlow.get(flowKey(canary, coalminer));
    if (!list) return;
    const ns = Math.max(0, Math.round(seconds * 1e9));
    for (const h of list) h.record(ns);
  }

  /** The rule's datapoint since its previous call, which starts a new window. */
  datapoint(rule: AlertRule): DataPoint {
    return rule.target !== undefined ? this.#probePoint(rule) : this.#flowPoint(rule);
  }

  #probePoint(rule: AlertRule): DataPoint {
    const w = this.#probe.get(rule);
    if (!w) return undefined;
    const { runs, failures, latency } = w;
    w.runs = 0;
    w.failures = 0;
    w.latency = new LatencyHistogram();
    const c = rule.condition;
    if (c.kind === 'noData') return runs > 0 ? { value: runs } : undefined;
    const last = this.#last.get(rule.target!);
    const carryMs = this.#carryMs.get(rule.target!) ?? Infinity;
    if (last === undefined || this.#now() - last.at > carryMs) return undefined;
    if (runs === 0) return carried(c, last, this.#now());
    switch (c.kind) {
      case 'latency':
        return latency.count > 0 ? { value: latency.percentile(c.percentile) / 1e9 } : undefined;
      case 'errorRate':
      case 'probeFailing':
        return { value: failures / runs };
      default:
        return carried(c, last, this.#now());
    }
  }

  #flowPoint(rule: AlertRule): DataPoint {
    const w = this.#flow.get(rule);
    if (!w) return undefined;
    const { canary, coalminer } = rule.flow!;
    const latency = w.latency;
    w.latency = new LatencyHistogram();
    const list = this.#byFlow.get(flowKey(canary, coalminer))!;
    list[list.indexOf(latency)] = w.latency;

    const d: Cumulative = { received: 0, declaredLost: 0, duplicated: 0, reordered: 0, sendFailed: 0 };
    const next = new Map<string, Cumulative>();
    for (const f of this.#counts()) {
      if (f.canary !== canary || f.coalminer !== coalminer) continue;
      const cur = cumulative(f.counts);
      const prev = w.previous.get(f.runId);
      next.set(f.runId, cur);
      for (const k of Object.keys(d) as (keyof Cumulative)[]) d[k] += Math.max(0, cur[k] - (prev?.[k] ?? 0));
    }
    w.previous = next;

    const c = rule.condition;
    const accounted = d.received + d.declaredLost;
    switch (c.kind) {
      case 'latency':
        return latency.count > 0 ? { value: latency.percentile(c.percentile) / 1e9 } : undefined;
      case 'lossRatio':
        return accounted > 0 ? { value: d.declaredLost / accounted } : undefined;
      case 'duplicateRatio':
        return d.received > 0 ? { value: d.duplicated / d.received } : undefined;
      case 'reorderRatio':
        return d.received > 0 ? { value: d.reordered / d.received } : undefined;
      case 'errorRate':
        return accounted + d.sendFailed > 0
          ? { value: d.sendFailed / (accounted + d.sendFailed) }
          : undefined;
      case 'noData':
        // Data is pings arriving: a flow whose pings are all lost is not being processed.
        return d.received > 0 ? { value: d.received } : undefined;
      default:
        return undefined;
    }
  }
}

/** The datapoint of a window that holds only the target's latest run. */
function carried(c: AlertRule['condition'], last: LastRun, nowMs: number): DataPoint {
  switch (c.kind) {
    case 'latency':
      return last.ok ? { value: last.durationNs / 1e9 } : undefined;
    case 'errorRate':
    case 'probeFailing':
      return { value: last.ok ? 0 : 1 };
    case 'certExpiringWithin':
      // The certificate's expiry stays true between runs (and through failed ones): the latest one known.
      return last.certExpiry !== undefined
        ? { value: (last.certExpiry - nowMs / 1000) / SECONDS_PER_DAY }
        : undefined;
    default:
      return undefined;
  }
}

function flowKey(canary: string, coalminer: string): string {
  return `${canary}\u0000${coalminer}`;
}
