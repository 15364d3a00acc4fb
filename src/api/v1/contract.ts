/**
 * The JSON shapes of the HTTP API (/api/v1). The server, the dashboard (web/) and the OpenAPI document
 * all follow these types; change them here first.
 *
 * Times are Unix milliseconds (numbers); durations and latencies are seconds (numbers); ratios are 0..1.
 * Errors are always `{ "error": { "code": string, "message": string } }` with a 4xx/5xx status.
 */

export type Status = 'up' | 'down' | 'unknown';

/** GET /api/v1/targets -> { targets: TargetSummary[] } */
export interface TargetSummary {
  name: string;
  kind: string;
  target: string;
  intervalSeconds: number;
  status: Status;
  /** The latest run, if any. */
  last?: {
    time: number;
    ok: boolean;
    /** Wall time of the run, as blackbox_exporter's probe_duration_seconds. */
    durationSeconds: number;
    /** Successful runs: the target's network time (sum of kernel-timed phases; ICMP: mean RTT). */
    networkSeconds?: number;
    phases: Record<string, number>;
    error?: { code: string; message: string };
  };
  /** Over the last hour (from the store): for the overview's sparkline and figures. */
  window: { p50: number | null; p95: number | null; successRatio: number | null; runs: number };
  /** Up to 60 points of the last hour: [time, p50 seconds | null, failures]. */
  sparkline: [number, number | null, number][];
}

/** GET /api/v1/flows -> { flows: FlowSummary[] }  (one per canary -> coalminer pair, all runs merged) */
export interface FlowSummary {
  canary: string;
  coalminer: string;
  transport: string;
  region: string;
  status: Status;
  counts: {
    expected: number;
    received: number;
    lost: number;
    inFlight: number;
    sendFailed: number;
    /** Of received: pings the canary said it failed to publish that arrived anyway (in-doubt publishes). */
    sendFailedArrived: number;
    /** Pings that reached the coalminer but its own full buffer dropped: not lost in the broker. */
    droppedLocally: number;
    duplicated: number;
    reordered: number;
    late: number;
    stale: number;
  };
  window: {
    p50: number | null;
    p95: number | null;
    p99: number | null;
    lossRatio: number | null;
    received: number;
  };
  sparkline: [number, number | null, number][];
  clockOffset?: { seconds: number; errorSeconds: number };
}

/**
 * GET /api/v1/targets/{name}/series?from=MS&to=MS&step=MS
 * GET /api/v1/flows/{canary}/{coalminer}/series?from=MS&to=MS&step=MS
 * -> Series. Defaults: to = now, from = to - 1h, step chosen so there are at most ~300 points.
 */
export interface Series {
  from: number;
  to: number;
  step: number;
  /** Which store tier answered: raw, 1m or 1h rollups. */
  resolution: 'raw' | '1m' | '1h';
  points: SeriesPoint[];
  /**
   * Latency bucket edges in seconds for every point's `heatmap` (length = heatmap length + 1): bucket i
   * counts successful samples in [heatmapBounds[i], heatmapBounds[i+1]) (the last one includes its top).
   */
  heatmapBounds?: number[];
}

export interface SeriesPoint {
  /** Start of the step. */
  time: number;
  count: number;
  /** Latency percentiles over the step (null when no successful sample). */
  p1: number | null;
  p5: number | null;
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  /** Probes: failed runs. Flows: pings declared lost. */
  failures: number;
  /** Flows only. */
  duplicated?: number;
  reordered?: number;
  late?: number;
  /** Flows only: pings that reached the coalminer but its own full buffer dropped (not in `failures`). */
  droppedLocally?: number;
  /** Probes (http) only: mean seconds of each phase over the step. */
  phases?: Record<string, number>;
  /** For the heatmap: counts per latency bucket; bounds are in Series-level `heatmapBounds`. */
  heatmap?: number[];
}

/**
 * GET /api/v1/flows/{canary}/{coalminer}/schedule?from=MS&to=MS&step=MS -> ScheduleSeries: the canary's
 * side of a flow, as recorded by the agent that runs the canary (same defaults as Series).
 */
export interface ScheduleSeries {
  from: number;
  to: number;
  step: number;
  resolution: Series['resolution'];
  points: SchedulePoint[];
}

export interface SchedulePoint {
  /** Start of the step. */
  time: number;
  /** Pings that fell due in the step. */
  due: number;
  /** Pings the canary published or gave up on in the step (sent + send-failed). */
  attempted: number;
  /** The most pings due but not yet attempted at any sample in the step (0: on schedule). */
  behindSchedule: number;
  /** How far behind its schedule the canary was at worst in the step (seconds). */
  behindScheduleSeconds: number;
}

/** GET /api/v1/matrix -> Matrix: canaries x coalminers, the region view. */
export interface Matrix {
  canaries: string[];
  coalminers: { name: string; region: string }[];
  /** cells[i][j] for canaries[i] -> coalminers[j]; null where there is no flow. */
  cells: ({ p95: number | null; lossRatio: number | null; status: Status } | null)[][];
}

/** POST /api/v1/check[?target=NAME] (write scope) -> { results: ProbeReport[] } (see src/core/report.ts) */

/**
 * GET /api/v1/events (server-sent events). Each event has `event:` and JSON `data:`:
 *   event: probe   data: ProbeReport (src/core/report.ts)
 *   event: flow    data: FlowSummary (every 5 s per flow)
 *   event: alert   data: AlertHistoryEntry (each state change of an alert rule)
 *   event: hello   data: { version: string, time: number }
 * A comment line `: keepalive` every 15 s.
 */

/** GET /api/v1/export?target=NAME&from=MS&to=MS&format=csv|jsonl (read scope): every raw probe result. */

/** GET /api/v1/openapi.json: the OpenAPI 3.1 document of all of the above. */

/**
 * GET /api/v1/whoami (read scope) -> WhoAmI: the token this request used, so a client (the dashboard)
 * can offer only what the token may do.
 */
export interface WhoAmI {
  /** The token's configured name, never the token. */
  name: string;
  scopes: ('read' | 'write')[];
}

/** GET /api/v1/status -> agent status: version, uptime, store writer stats, counts. */
/** A canary's schedule with one coalminer (canary.ts FlowStats): due = attempted + behindSchedule. */
export interface CanarySchedule {
  canary: string;
  /** A coalminer's name, or "(pruned)": the summed counts of coalminers retired long ago. */
  coalminer: string;
  /** Pings whose intended send time has passed. */
  due: number;
  /** Pings published or given up on: sent + sendFailed + still pending. */
  attempted: number;
  sent: number;
  sendFailed: number;
  /** Pings due but not attempted: the canary is behind its schedule (for good, once a flow ended). */
  behindSchedule: number;
  /** Now minus the intended send time of the next ping not yet attempted (as of a flow's end, once ended). */
  behindScheduleSeconds: number;
}

export interface AgentStatus {
  version: string;
  startedAt: number;
  targets: number;
  flows: number;
  /** This agent's canaries, one entry per coalminer each pings (or pinged); absent without canaries. */
  canaries?: CanarySchedule[];
  store: {
    engine: 'sqlite' | 'postgres' | 'none';
    queued: number;
    written: number;
    dropped: number;
    flushes: number;
    lastError?: string;
  };
  /** Filled in by the API router (the agent leaves it out): event streams and rate limiting. */
  api?: {
    eventClients: number;
    eventClientsDropped: number;
    eventClientsRefused: number;
    rateLimited: number;
    /** Check requests refused because the check-now budget was spent. */
    checksRefused: number;
  };
}

export type AlertState = 'ok' | 'pending' | 'firing' | 'resolved';

/**
 * GET /api/v1/alerts (read scope) -> { alerts: AlertRuleStatus[] }: every configured rule with its state.
 * Rules are configured under `alerting.rules`; the API never creates or edits one.
 */
export interface AlertRuleStatus {
  rule: string;
  /** What the rule watches: a probe target, or a canary -> coalminer flow. */
  subject: { target: string } | { canary: string; coalminer: string };
  /** The condition as a person reads it, e.g. "p95 latency > 0.25 s" or "no data for 5m". */
  condition: string;
  /** Fire when m of the last n datapoints breach. */
  datapoints: { m: number; n: number };
  forSeconds: number;
  evaluateEverySeconds: number;
  missingData: 'breaching' | 'notBreaching' | 'ignore';
  state: AlertState;
  /** When the current pending or firing period began (Unix ms). */
  activeSince?: number;
  lastEvaluatedAt?: number;
  /** The value at the last evaluation that had data (seconds, a ratio, days, ... as the condition says). */
  lastValue?: number;
  /** The active silences that mute this rule's notifications now, by id. */
  silencedBy: string[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/**
 * GET /api/v1/alerts/history?rule=NAME&limit=N (read scope) -> { history: AlertHistoryEntry[] }, newest
 * first. `rule` narrows to one rule (404 when no rule has that name); limit 1-1000, default 100.
 */
export interface AlertHistoryEntry {
  rule: string;
  from: AlertState;
  to: AlertState;
  /** Unix ms of the evaluation that made the change. */
  at: number;
  /** The value at that evaluation; null when it had no data. */
  value: number | null;
}

/**
 * A silence mutes notifications (not evaluation) of every rule whose labels equal all its matchers; the
 * labels are alertname, target or canary and coalminer, and the rule's own labels.
 *
 * GET    /api/v1/silences (read)          -> { silences: Silence[] }   active and expired (last 24 h)
 * POST   /api/v1/silences (write) NewSilence -> 201 Silence; 400 with the field at fault
 * DELETE /api/v1/silences/{id} (write)    -> 204; 404 when there is no such silence
 */
export interface Silence {
  id: string;
  matchers: Record<string, string>;
  startsAt: number;
  endsAt: number;
  comment: string;
  createdBy: string;
  /** startsAt <= now < endsAt */
  active: boolean;
}

/**
 * The POST body: at least one matcher (label names [a-zA-Z_][a-zA-Z0-9_]*, string values); exactly one of
 * endsAt (Unix ms, in the future) or durationSeconds, either at most 90 days ahead. createdBy defaults to
 * "api".
 */
export interface NewSilence {
  matchers: Record<string, string>;
  endsAt?: number;
  durationSeconds?: number;
  comment?: string;
  createdBy?: string;
}
