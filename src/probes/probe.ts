import type { z } from 'zod';
import type { Phase, ProbeContext, ProbeResult } from '../core/types.js';

/**
 * One probe kind: its option schema and a function that runs it once against one target.
 * Scheduling, timeouts, metrics and storage are someone else's job; a probe only probes.
 */
export interface ProbeDefinition<S extends z.ZodRawShape = z.ZodRawShape> {
  /** The kind word: folder name, config discriminant and registry key. */
  readonly kind: string;
  /** One line for --help. */
  readonly summary: string;
  /** What a target looks like, for --help and error messages (e.g. `https://host/path`). */
  readonly targetForm: string;
  /** The phases a run reports, in order (ProbeResult.phases): the dashboard charts a kind with several. */
  readonly phases: readonly Phase[];
  /**
   * What each value a run reports means (ProbeResult.values), by name: blackbox_exporter's `probe_*`
   * gauge names where it has the value. The Prometheus and OTLP sinks describe the values with it.
   */
  readonly values: Readonly<Record<string, string>>;
  /**
   * The prefix of this kind's latency404-compatible families (`metrics.compat: [latency404]`): `http`
   * gives http_health_check_total and http_response_time_seconds. Unset: the kind has none.
   */
  readonly compatPrefix?: string;
  /** Kind-specific options, a strict object whose fields all have defaults or are optional. */
  readonly options: z.ZodObject<S>;
  /**
   * Why this kind must run on the agent's main thread, when it cannot run in a probe worker thread
   * (src/probes/workers/: a native addon that keeps process-wide state, say). Unset: it can.
   */
  readonly mainThreadOnly?: string;
  /** Returns a message saying what is wrong with the target string, or undefined if it is usable. */
  validateTarget(target: string): string | undefined;
  /**
   * Runs once. Never rejects for a failure of the target (down, refused, slow, invalid): those are
   * `{ ok: false, error }` results. It must return promptly once `ctx.signal` aborts.
   */
  run(target: string, options: z.output<z.ZodObject<S>>, ctx: ProbeContext): Promise<ProbeResult>;
}

export function defineProbe<S extends z.ZodRawShape>(def: ProbeDefinition<S>): ProbeDefinition<S> {
  return def;
}
