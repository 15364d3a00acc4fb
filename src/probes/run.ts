import type { Clock } from '../core/clock.js';
import type { ProbeResult } from '../core/types.js';
import { probes, type ProbeKind } from './registry.js';

/** Extra time a probe gets, past its timeout, to notice the abort before we give up on it. */
const GRACE_MS = 250;

/**
 * Runs one probe with its timeout enforced twice: the probe's own signal, and a hard deadline in case
 * a probe fails to honour it. A probe that throws is a bug; it becomes an `error` result, never a crash.
 */
export async function runProbe(
  kind: ProbeKind,
  target: string,
  options: Record<string, unknown>,
  ctx: { clock: Clock; timeoutMs: number; signal?: AbortSignal },
): Promise<ProbeResult> {
  const def = probes[kind];
  const controller = new AbortController();
  const timeoutError = Object.assign(new Error(`timed out after ${ctx.timeoutMs} ms`), { code: 'ETIMEDOUT' });
  const timer = setTimeout(() => controller.abort(timeoutError), ctx.timeoutMs);
  const onOuterAbort = () => controller.abort(ctx.signal?.reason);
  ctx.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const start = ctx.clock.nowNs();
  let hardTimer: NodeJS.Timeout | undefined;
  try {
    const hardDeadline = new Promise<ProbeResult>((resolve) => {
      hardTimer = setTimeout(
        () =>
          resolve({
            ok: false,
            durationNs: ctx.clock.nowNs() - start,
            phases: {},
            error: {
              code: 'timeout',
              message: `timed out after ${ctx.timeoutMs} ms (the probe ignored its deadline)`,
            },
          }),
        ctx.timeoutMs + GRACE_MS,
      );
    });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each kind's options were validated by its own schema
    const run = def.run(target, options as any, {
      signal: controller.signal,
      clock: ctx.clock,
      timeoutMs: ctx.timeoutMs,
    });
    return await Promise.race([run, hardDeadline]);
  } catch (err) {
    return {
      ok: false,
      durationNs: ctx.clock.nowNs() - start,
      phases: {},
      error: {
        code: 'error',
        message: `${kind} probe failed unexpectedly: ${(err as Error)?.message ?? String(err)}`,
      },
    };
  } finally {
    clearTimeout(timer);
    clearTimeout(hardTimer);
    ctx.signal?.removeEventListener('abort', onOuterAbort);
  }
}
