import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../core/clock.js';
import type { ProbeContext, ProbeResult } from '../core/types.js';
import { probes } from './registry.js';
import { runProbe } from './run.js';

// runProbe's job is to survive probes that misbehave, so these tests stand a misbehaving one in for
// the dns kind (its options are all optional) and put the real one back after each test.
const realRun = probes.dns.run;
afterEach(() => {
  probes.dns.run = realRun;
});
const stubRun = (fn: (ctx: ProbeContext) => Promise<ProbeResult>) => {
  probes.dns.run = ((_t: string, _o: unknown, ctx: ProbeContext) => fn(ctx)) as typeof realRun;
};
const run = (timeoutMs: number, signal?: AbortSignal) =>
  runProbe('dns', 'example.invalid', {}, { clock: systemClock, timeoutMs, ...(signal ? { signal } : {}) });

describe('runProbe', () => {
  it('aborts the probe at its timeout with an ETIMEDOUT reason', async () => {
    let reason: unknown;
    stubRun(
      (ctx) =>
        new Promise((resolve) =>
          ctx.signal.addEventListener('abort', () => {
            reason = ctx.signal.reason;
            resolve({
              ok: false,
              durationNs: 1n,
              phases: {},
              error: { code: 'timeout', message: 'stopped' },
            });
          }),
        ),
    );
    const r = await run(50);
    expect(r).toMatchObject({ ok: false, error: { code: 'timeout', message: 'stopped' } });
    expect(reason).toMatchObject({ code: 'ETIMEDOUT', message: 'timed out after 50 ms' });
  });

  it('gives up on a probe that ignores its deadline, 250 ms past the timeout', async () => {
    stubRun(() => new Promise(() => {}));
    const t0 = Date.now();
    const r = await run(50);
    const took = Date.now() - t0;
    expect(r).toMatchObject({ ok: false, error: { code: 'timeout' } });
    if (!r.ok) expect(r.error.message).toContain('ignored its deadline');
    expect(took).toBeGreaterThanOrEqual(295);
    expect(took).toBeLessThan(600);
  });

  it('keeps the hard deadline at timeout + grace when the caller aborts early', async () => {
    stubRun(() => new Promise(() => {}));
    const outer = new AbortController();
    const t0 = Date.now();
    setTimeout(() => outer.abort(new Error('shutting down')), 20);
    const r = await run(100, outer.signal);
    expect(r).toMatchObject({ ok: false, error: { code: 'timeout' } });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(345);
  });

  it('passes the caller abort through to the probe', async () => {
    stubRun(
      (ctx) =>
        new Promise((resolve) =>
          ctx.signal.addEventListener('abort', () =>
            resolve({
              ok: false,
              durationNs: 1n,
              phases: {},
              error: { code: 'aborted', message: String(ctx.signal.reason) },
            }),
          ),
        ),
    );
    const outer = new AbortController();
    setTimeout(() => outer.abort('bye'), 10);
    expect(await run(5000, outer.signal)).toMatchObject({
      ok: false,
      error: { code: 'aborted', message: 'bye' },
    });
  });

  it('turns a probe that throws, at once or later, into an error result', async () => {
    probes.dns.run = (() => {
      throw new Error('boom');
    }) as typeof realRun;
    expect(await run(1000)).toMatchObject({
      ok: false,
      error: { code: 'error', message: 'dns probe failed unexpectedly: boom' },
    });
    stubRun(() => Promise.reject(new Error('later')));
    expect(await run(1000)).toMatchObject({
      ok: false,
      error: { code: 'error', message: 'dns probe failed unexpectedly: later' },
    });
  });

  it('returns a finished probe result with its wall time, and its phases as network time', async () => {
    const result: ProbeResult = { ok: true, durationNs: 5n, phases: { resolve: 2n, connect: 3n } };
    stubRun(async () => result);
    const before = process.hrtime.bigint();
    const r = await run(1000);
    const wall = process.hrtime.bigint() - before;
    expect(r).toMatchObject({ ok: true, phases: result.phases, networkNs: 5n });
    expect(r.durationNs > 5n && r.durationNs <= wall).toBe(true);
  });
});
