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
    durationSeconds: number;
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
  /** Probes (http) only: mean seconds of each phase over the step. */
  phases?: Record<string, number>;
  /** For the heatmap: counts per latency bucket; bounds are in Series-level `heatmapBounds`. */
  heatmap?: number[];
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
 *   event: hello   data: { version: string, time: number }
 * A comment line `: keepalive` every 15 s.
 */

/** GET /api/v1/export?target=NAME&from=MS&to=MS&format=csv|jsonl (read scope): every raw probe result. */

/** GET /api/v1/openapi.json: the OpenAPI 3.1 document of all of the above. */

/** GET /api/v1/status -> agent status: version, uptime, store writer stats, counts. */
export interface AgentStatus {
  version: string;
  startedAt: number;
  targets: number;
  flows: number;
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
  };
}
