// @ts-check
/**
 * Loads the compiled project from dist/ for the bench. Each part is imported on its own, so a part that
 * is broken mid-edit is reported with its reason while the rest still runs.
 */
import { register } from 'node:module';

const DIST = new URL('../../dist/', import.meta.url);
let hookRegistered = false;

/**
 * @template T
 * @param {string} path module path under dist/
 * @returns {Promise<{ ok: true, mod: T } | { ok: false, reason: string }>}
 */
async function tryImport(path) {
  try {
    return { ok: true, mod: /** @type {T} */ (await import(new URL(path, DIST).href)) };
  } catch (err) {
    return {
      ok: false,
      reason: `dist/${path}: ${String(/** @type {Error} */ (err)?.message ?? err).split('\n')[0]}`,
    };
  }
}

/**
 * @typedef {{ ok: boolean, durationNs: bigint, values?: Record<string, number>, error?: { code: string, message: string, cause?: string } }} ProbeResult
 * @typedef {{ kind: string, options: { parse(v: unknown): Record<string, unknown> }, unavailable?: string }} ProbeDef
 * @typedef {{ nowNs(): bigint, wallMs(): number }} Clock
 * @typedef {(kind: string, target: string, options: Record<string, unknown>, ctx: { clock: Clock, timeoutMs: number }) => Promise<ProbeResult>} RunProbe
 * @typedef {{ observe(o: { name: string, kind: string, target: string, startedAtMs: number, result: ProbeResult }): void }} ProbeMetricsLike
 * @typedef {{
 *   runProbe?: RunProbe,
 *   probes?: Record<string, ProbeDef>,
 *   systemClock?: Clock,
 *   makeMetrics?: () => ProbeMetricsLike,
 *   Scheduler?: new (clock: Clock, events: { lateness?(id: string, s: number): void, skipped?(id: string, reason: string): void }) => {
 *     add(job: { id: string, intervalMs: number, run(): Promise<unknown> }): void, start(): void, stop(): void, idle(): Promise<void> },
 *   parseConfig?: (text: string, file?: string, env?: Record<string, string>) => { targets: { name: string, kind: string, target: string, intervalMs: number, timeoutMs: number, options: Record<string, unknown> }[] },
 *   missing: Record<string, string>,
 * }} Dist
 */

/** @returns {Promise<Dist>} */
export async function loadDist() {
  if (!hookRegistered) {
    register(new URL('./probe-guard-hook.mjs', import.meta.url));
    hookRegistered = true;
  }
  /** @type {Dist} */
  const dist = { missing: {} };
  /** @type {any} */
  let m;
  const note = (/** @type {string} */ part, /** @type {{ ok: false, reason: string }} */ r) =>
    (dist.missing[part] = r.reason);

  if ((m = await tryImport('core/clock.js')).ok) dist.systemClock = m.mod.systemClock;
  else note('clock', m);
  if ((m = await tryImport('probes/registry.js')).ok) dist.probes = m.mod.probes;
  else note('registry', m);
  if ((m = await tryImport('probes/run.js')).ok) dist.runProbe = m.mod.runProbe;
  else note('runProbe', m);
  if ((m = await tryImport('core/scheduler.js')).ok) dist.Scheduler = m.mod.Scheduler;
  else note('Scheduler', m);
  if ((m = await tryImport('config/load.js')).ok) dist.parseConfig = m.mod.parseConfig;
  else note('parseConfig', m);
  const pm = await tryImport('sinks/prometheus/probe-metrics.js');
  if (pm.ok) {
    const { Registry } = await import('prom-client');
    const schema = await tryImport('config/schema.js');
    // The agent's default buckets, so the histogram does the same work it does in the agent.
    /** @type {any} */
    const s = schema.ok ? schema.mod : undefined;
    const buckets = s
      ? s.bucketBounds(s.DEFAULT_BUCKETS)
      : Array.from({ length: 18 }, (_, i) => 0.0001 * 2 ** i);
    const ProbeMetrics = /** @type {any} */ (pm.mod).ProbeMetrics;
    dist.makeMetrics = () => new ProbeMetrics(new Registry(), { buckets, compat: [] });
  } else note('ProbeMetrics', pm);
  return dist;
}
