import type { Clock } from '../core/clock.js';
import type { Phase, ProbeResult } from '../core/types.js';
import { probes, type ProbeKind } from './registry.js';

/** Extra time a probe gets, past its timeout, to notice the abort before we give up on it. */
const GRACE_MS = 250;

/**
 * Runs one probe with its timeout enforced twice: the probe's own signal, and a hard deadline in case
 * a probe fails to honour it. A probe that throws is a bug; it becomes an `error` result, never a crash.
 *
 * This runs once per probe, thousands of times a second on a busy agent, so the common path (the probe
 * finishes before its timeout) costs one timer and one promise: the timeout error is made only when the
 * timer fires, and the hard-deadline timer is armed only once the probe has been told to stop.
 */
export function runProbe(
  kind: ProbeKind,
  target: string,
  options: Record<string, unknown>,
  ctx: { clock: Clock; timeoutMs: number; signal?: AbortSignal },
): Promise<ProbeResult> {
  const def = probes[kind];
  const controller = new AbortController();
  const start = ctx.clock.nowNs();
  const outer = ctx.signal;
  let hardTimer: NodeJS.Timeout | undefined;
  let settle: ((r: ProbeResult) => void) | undefined;

  const failed = (err: unknown): ProbeResult => ({
    ok: false,
    durationNs: ctx.clock.nowNs() - start,
    phases: {},
    error: {
      code: 'error',
      message: `${kind} probe failed unexpectedly: ${(err as Error)?.message ?? String(err)}`,
    },
  });
  // The hard deadline stays where it always was, timeout + grace after the start, however the abort came.
  const armHardDeadline = () => {
    if (hardTimer !== undefined) return;
    const elapsedMs = Number(ctx.clock.nowNs() - start) / 1e6;
    hardTimer = setTimeout(
      () =>
        settle?.({
          ok: false,
          durationNs: ctx.clock.nowNs() - start,
          phases: {},
          error: {
            code: 'timeout',
            message: `timed out after ${ctx.timeoutMs} ms (the probe ignored its deadline)`,
          },
        }),
      Math.max(0, ctx.timeoutMs + GRACE_MS - elapsedMs),
    );
  };
  const timer = setTimeout(() => {
    controller.abort(Object.assign(new Error(`timed out after ${ctx.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    armHardDeadline();
  }, ctx.timeoutMs);
  const onOuterAbort = () => {
    controller.abort(outer?.reason);
    armHardDeadline();
  };
  outer?.addEventListener('abort', onOuterAbort, { once: true });

  return new Promise<ProbeResult>((resolve) => {
    settle = (r) => {
      if (settle === undefined) return;
      settle = undefined;
      clearTimeout(timer);
      if (hardTimer !== undefined) clearTimeout(hardTimer);
      outer?.removeEventListener('abort', onOuterAbort);
      resolve(r);
    };
    let run: Promise<ProbeResult>;
    try {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each kind's options were validated by its own schema
      run = def.run(target, options as any, {
        signal: controller.signal,
        clock: ctx.clock,
        timeoutMs: ctx.timeoutMs,
      });
    } catch (err) {
      settle(failed(err));
      return;
    }
    run.then(
      (r) => settle?.(withWallTime(r, ctx.clock.nowNs() - start)),
      (err: unknown) => settle?.(failed(err)),
    );
  });
}

/**
 * The run's duration is its wall time, as blackbox_exporter's is, whatever the probe measured; the network
 * time a successful probe timed is kept apart in `networkNs` (the probe's own, else the sum of its phases).
 */
function withWallTime(r: ProbeResult, wallNs: bigint): ProbeResult {
  if (!r.ok) return { ...r, durationNs: wallNs };
  let networkNs = r.networkNs;
  if (networkNs === undefined) {
    networkNs = 0n;
    for (const phase in r.phases) networkNs += r.phases[phase as Phase] ?? 0n;
  }
  return { ...r, durationNs: wallNs, networkNs };
}
