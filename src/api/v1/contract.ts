/**
 * The JSON shapes of the HTTP API (/api/v1). The server, the dashboard (web/) and the OpenAPI document
 * all follow these types; change them here first.
 *
 * Times are Unix milliseconds (numbers); durations and latencies are seconds (numbers); ratios are 0..1.
 * Errors are always `{ "error": { "code": string, "message": string } }` with a 4xx/5xx status.
 */

export type { SchedulePoint, ScheduleSeries, Series, SeriesPoint } from '../../store/series.js';
export type { AlertHistoryEntry, AlertRuleStatus, AlertState, Silence } from '../../alerting/types.js';

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
