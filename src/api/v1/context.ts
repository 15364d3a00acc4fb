import type { ProbeReport } from '../../core/report.js';
import type { AlertControl } from '../../alerting/types.js';
import type { AgentStatus, FlowSummary, ScheduleSeries, Series } from './contract.js';

/**
 * What the /api/v1 routes need from the agent. The agent implements it; tests use MemoryContext
 * (test/support/memory-context.ts). Nothing here takes an address from a request: check() runs configured targets only.
 */
export interface ApiContext {
  readonly version: string;
  /** Every configured probe target with its latest run, if any. */
  targets(): readonly TargetInfo[];
  /** Every canary -> coalminer flow this agent knows, with its live counts. */
  flows(): readonly FlowInfo[];
  /**
   * Runs the named configured targets (every one when names is undefined) now. The router has already
   * checked that every name is configured; an implementation must still never resolve a name to
   * anything but a configured target.
   */
  check(names?: readonly string[]): Promise<ProbeReport[]>;
  /** Live events for /api/v1/events. The returned function unsubscribes; it must be idempotent. */
  readonly events: ApiEvents;
  /** The results store; absent when the agent runs without one (series and export then answer 503). */
  readonly store?: ApiStore | undefined;
  status(): AgentStatus;
  /** Alert rules, their history and silences; absent when the agent has no `alerting:` section. */
  readonly alerts?: ApiAlerts | undefined;
}

/**
 * The alerting engine as the API sees it. The router validates every request first (rule names exist,
 * a NewSilence is well formed: see contract.ts) and turns durationSeconds into endsAt.
 */
/** The alert engine as the API reads and silences it (src/alerting/types.ts). */
export type ApiAlerts = AlertControl;

export interface ApiEvent {
  event: 'probe' | 'flow' | 'alert';
  /** probe: a ProbeReport; flow: a FlowSummary; alert: an AlertHistoryEntry. Serialised as JSON as given. */
  data: unknown;
}

export interface ApiEvents {
  subscribe(listener: (e: ApiEvent) => void): () => void;
}

export interface TargetInfo {
  name: string;
  kind: string;
  target: string;
  intervalSeconds: number;
  /** The latest run, if there was one since the agent started. */
  last?: ProbeReport | undefined;
}

/** A flow as the agent sees it live; the router adds the store's window and sparkline. */
export interface FlowInfo {
  canary: string;
  coalminer: string;
  transport: string;
  region: string;
  status: FlowSummary['status'];
  counts: FlowSummary['counts'];
  clockOffset?: FlowSummary['clockOffset'];
  /** The live window, used when there is no store (or it has nothing yet). */
  window?: FlowSummary['window'];
}

/**
 * One raw probe run as the store keeps it (the same fields as the store's ProbeRecord). Times Unix ms,
 * durations seconds.
 */
export interface ExportRecord {
  time: number;
  name: string;
  kind: string;
  target: string;
  ok: boolean;
  durationSeconds: number;
  phases: Record<string, number>;
  errorCode?: string;
  errorMessage?: string;
  values?: Record<string, number>;
}

/** What the overview needs of a target's range; the store's ProbeWindow has these and more. */
export interface ProbeWindow {
  p50: number | null;
  p95: number | null;
  successRatio: number | null;
  runs: number;
}

/** One target's overview of a range (the store's TargetOverview). */
export interface TargetOverview {
  window: ProbeWindow & { failures: number };
  /** One per minute of the range, each over the runs that started in it. */
  points: { time: number; p50: number | null; failures: number; runs: number }[];
}

/** What the overview needs of a flow's range; the store's FlowWindow has these and more. */
export interface FlowWindow {
  p50: number | null;
  p95: number | null;
  p99: number | null;
  lossRatio: number | null;
  received: number;
}

/** One flow's overview of a range (the store's FlowOverview). */
export interface FlowOverview {
  window: FlowWindow;
  /** One per minute of the range; failures are the pings lost in it. */
  points: { time: number; p50: number | null; failures: number }[];
}

/**
 * The part of the results store the API reads: the store's ResultStore satisfies it as it is
 * (store-compat.test.ts checks that at compile time).
 */
export interface ApiStore {
  /** Percentiles, counts, failures per step over [from, to). */
  probeSeries(name: string, from: number, to: number, stepMs: number): Promise<Series>;
  flowSeries(canary: string, coalminer: string, from: number, to: number, stepMs: number): Promise<Series>;
  /**
   * The canary's side of a flow per step over [from, to): due and attempted pings, and the worst
   * behind-schedule gauges of the step (the store's schedule series, written by the agent running the canary).
   */
  scheduleSeries(
    canary: string,
    coalminer: string,
    from: number,
    to: number,
    stepMs: number,
  ): Promise<ScheduleSeries>;
  /** Aggregates over [from, to): percentiles over every run, not of per-step percentiles. */
  probeWindow(name: string, from: number, to: number): Promise<ProbeWindow>;
  flowWindow(canary: string, coalminer: string, from: number, to: number): Promise<FlowWindow>;
  /**
   * For each name, in order, over [from, to) (whole minutes): a point per minute and the window over every
   * run, for all targets in one go (what GET /targets needs; probeWindow and probeSeries per target cost a
   * query each). The same figures as probeWindow and probeSeries over the range, except that percentiles
   * come from 1-minute rollups (within 0.05 % of the raw runs').
   */
  probeOverview(names: readonly string[], from: number, to: number): Promise<TargetOverview[]>;
  /**
   * For each flow, in order, over [from, to) (whole minutes): a point per minute and the window, for all
   * flows in one go (what GET /flows needs): the same figures as flowWindow and flowSeries over the range.
   */
  flowOverview(
    flows: readonly { canary: string; coalminer: string }[],
    from: number,
    to: number,
  ): Promise<FlowOverview[]>;
  /** Every raw run of the target with from <= time < to, oldest first. Breaking out of it stops the query. */
  exportProbes(name: string, from: number, to: number): AsyncIterable<ExportRecord>;
}

/** from, to and step of a series request, validated. */
export interface SeriesQuery {
  /** Unix ms, inclusive. */
  from: number;
  /** Unix ms, exclusive. */
  to: number;
  /** Step in ms; points start at from + k * step. */
  step: number;
}
