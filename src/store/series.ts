/**
 * The time series the store answers with: a probe target's or a flow's latency over time, and a canary's
 * schedule. The HTTP API returns them as they are (src/api/v1/contract.ts re-exports them), so these are
 * also the JSON shapes of the series endpoints.
 *
 * Times are Unix milliseconds; latencies are seconds.
 */

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
