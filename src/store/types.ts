import type { StoreEngine } from './engines.js';
import type { ScheduleSeries, Series } from './series.js';
import { nsToSeconds } from '../core/clock.js';
import type { Observation } from '../core/types.js';
import type { LatencyHistogram } from '../stats/histogram.js';

/** One probe run, as the store keeps it. Times are Unix ms, durations seconds. */
export interface ProbeRecord {
  /** Wall-clock ms when the run started. */
  time: number;
  name: string;
  kind: string;
  target: string;
  ok: boolean;
  durationSeconds: number;
  /** Seconds per phase (resolve, connect, tls, processing, transfer, ...). */
  phases: Record<string, number>;
  errorCode?: string;
  errorMessage?: string;
  values?: Record<string, number>;
}

export type HistogramJSON = ReturnType<LatencyHistogram['toJSON']>;

/** One canary -> coalminer flow over one sampling interval: count deltas and the interval's latencies. */
export interface FlowRecord {
  /** Start of the interval (Unix ms). */
  time: number;
  intervalMs: number;
  canary: string;
  coalminer: string;
  transport: string;
  region: string;
  runId: string;
  received: number;
  lost: number;
  duplicated: number;
  reordered: number;
  late: number;
  sendFailed: number;
  /** A gauge: pings in flight at the end of the interval. */
  inFlight: number;
  /** Pings that reached the coalminer but its own full subscription buffer dropped: never `lost`. */
  droppedLocally: number;
  /** Latency (ns) of the pings received in the interval. */
  latency: HistogramJSON;
}

/**
 * A canary's schedule with one coalminer over one sampling interval, recorded by the agent that runs the
 * canary: due and attempted deltas, and how far behind schedule it was at the end of the interval.
 */
export interface ScheduleRecord {
  /** Start of the interval (Unix ms). */
  time: number;
  intervalMs: number;
  canary: string;
  coalminer: string;
  transport: string;
  /** The run id (hex) of the canary's current flow with the coalminer. */
  runId: string;
  /** Pings that fell due in the interval. */
  due: number;
  /** Pings published or given up on in the interval. */
  attempted: number;
  /** A gauge: pings due but not attempted at the end of the interval. */
  behind: number;
  /** A gauge: how far behind its schedule the canary was then (seconds). */
  behindSeconds: number;
}

/** The overview figures of a probe target over a range. */
export interface ProbeWindow {
  from: number;
  to: number;
  runs: number;
  failures: number;
  successRatio: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

/** The overview figures of a flow over a range (all runs of the canary -> coalminer pair merged). */
export interface FlowWindow {
  from: number;
  to: number;
  received: number;
  lost: number;
  duplicated: number;
  reordered: number;
  late: number;
  sendFailed: number;
  /** The latest in-flight gauge in the range, or 0. */
  inFlight: number;
  /** Dropped by the coalminer's own full buffer: not part of lossRatio. */
  droppedLocally: number;
  /** lost / (received + lost): local drops are not loss. */
  lossRatio: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

/** One target's overview of a range: a point per minute and the window over every run in it. */
export interface TargetOverview {
  window: {
    runs: number;
    failures: number;
    successRatio: number | null;
    p50: number | null;
    p95: number | null;
  };
  points: { time: number; p50: number | null; failures: number; runs: number }[];
}

/** One flow's overview of a range: a point per minute and the window over every interval in it. */
export interface FlowOverview {
  window: {
    p50: number | null;
    p95: number | null;
    p99: number | null;
    lossRatio: number | null;
    received: number;
  };
  /** failures: pings lost in the minute. */
  points: { time: number; p50: number | null; failures: number }[];
}

/** One alert rule state change (the same fields as the API's AlertHistoryEntry). */
export interface AlertEventRecord {
  rule: string;
  from: string;
  to: string;
  at: number;
  value: number | null;
}

/** A silence (the same fields as the API's Silence, minus the computed `active`). */
export interface SilenceRecord {
  id: string;
  matchers: Record<string, string>;
  startsAt: number;
  endsAt: number;
  comment: string;
  createdBy: string;
}

export interface ResultStore {
  readonly engine: StoreEngine;
  writeProbes(records: readonly ProbeRecord[]): Promise<void>;
  writeFlows(records: readonly FlowRecord[]): Promise<void>;
  writeSchedules(records: readonly ScheduleRecord[]): Promise<void>;
  /** Percentiles, counts, heatmap and mean phases per step over [from, to) of one probe target. */
  probeSeries(name: string, from: number, to: number, stepMs: number): Promise<Series>;
  /** The same for a canary -> coalminer flow, all runs merged. */
  flowSeries(canary: string, coalminer: string, from: number, to: number, stepMs: number): Promise<Series>;
  /** A canary's schedule with a coalminer per step: due, attempted, and the worst behind-schedule gauges. */
  scheduleSeries(
    canary: string,
    coalminer: string,
    from: number,
    to: number,
    stepMs: number,
  ): Promise<ScheduleSeries>;
  probeWindow(name: string, from: number, to: number): Promise<ProbeWindow>;
  flowWindow(canary: string, coalminer: string, from: number, to: number): Promise<FlowWindow>;
  /** Each name's runs over [from, to) (whole minutes) by minute and in all, from rollups (store/overview.ts). */
  probeOverview(names: readonly string[], from: number, to: number): Promise<TargetOverview[]>;
  /**
   * Each flow's intervals over [from, to) (whole minutes, at most 6 h) by minute and in all, in one read
   * for every flow (store/flow-overview.ts): the figures flowWindow and flowSeries give.
   */
  flowOverview(
    flows: readonly { canary: string; coalminer: string }[],
    from: number,
    to: number,
  ): Promise<FlowOverview[]>;
  /**
   * Runs written that the overview's in-memory tail could not keep (it is full when rollups stop
   * finishing): the overview misses them until a rollup holds them.
   */
  overviewDropped?(): number;
  /** Every raw probe run of `name` with from <= time < to, in time order (streamed in pages). */
  exportProbes(name: string, from: number, to: number): AsyncIterable<ProbeRecord>;
  /** Appends alert state changes. */
  writeAlertEvents(events: readonly AlertEventRecord[]): Promise<void>;
  /** The newest `perRule` events of each rule (all rules), oldest first. */
  alertEvents(perRule: number): Promise<AlertEventRecord[]>;
  /** Inserts or replaces (by id) a silence. */
  saveSilence(s: SilenceRecord): Promise<void>;
  /** Silences whose endsAt >= `endedAfter` (Unix ms), newest startsAt first. */
  silences(endedAfter: number): Promise<SilenceRecord[]>;
  /**
   * Builds or refreshes the 1-minute and 1-hour buckets of what was written since, then applies retention
   * (alert events go with the 1-hour tier, silences 7 days after they ended).
   */
  rollup(nowMs: number): Promise<void>;
  /** 'ok', or what the engine found wrong. */
  integrityCheck(): Promise<string>;
  /** Idempotent. */
  close(): Promise<void>;
}

export function toProbeRecord(o: Observation): ProbeRecord {
  const r = o.result;
  const phases: Record<string, number> = {};
  for (const [k, v] of Object.entries(r.phases)) if (v !== undefined) phases[k] = nsToSeconds(v);
  const rec: ProbeRecord = {
    time: o.startedAtMs,
    name: o.name,
    kind: o.kind,
    target: o.target,
    ok: r.ok,
    durationSeconds: nsToSeconds(r.durationNs),
    phases,
  };
  if (!r.ok) {
    rec.errorCode = r.error.code;
    rec.errorMessage = r.error.message;
  }
  if (r.values && Object.keys(r.values).length > 0) rec.values = { ...r.values };
  return rec;
}

export type { StoreEngine };
