import { afterEach, describe, expect, it } from 'vitest';
import type { Series, TargetSummary } from './contract.js';
import type { ProbeWindow, TargetOverview } from './context.js';
import { MemoryContext, MemoryStore } from '../../../test/support/memory-context.js';
import { closeServedApis, READ, serveApi } from '../../../test/support/serve-api.js';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 30);
const MIN = 60_000;

afterEach(closeServedApis);

/** Counts what the router asks of the store. */
class CountingStore extends MemoryStore {
  overviews: { names: readonly string[]; from: number; to: number }[] = [];
  perTarget = 0;
  failing = false;
  private inOverview = false;

  override async probeOverview(
    names: readonly string[],
    from: number,
    to: number,
  ): Promise<TargetOverview[]> {
    this.overviews.push({ names, from, to });
    if (this.failing) throw new Error('the store is down');
    // MemoryStore answers it with its own probeWindow and probeSeries: those calls are not the router's.
    this.inOverview = true;
    try {
      return await super.probeOverview(names, from, to);
    } finally {
      this.inOverview = false;
    }
  }

  override async probeWindow(name: string, from: number, to: number): Promise<ProbeWindow> {
    if (!this.inOverview) this.perTarget++;
    return super.probeWindow(name, from, to);
  }

  override async probeSeries(name: string, from: number, to: number, stepMs: number): Promise<Series> {
    if (!this.inOverview) this.perTarget++;
    return super.probeSeries(name, from, to, stepMs);
  }
}

async function targets(store: CountingStore, n: number): Promise<{ status: number; body: TargetSummary[] }> {
  const ctx = new MemoryContext({
    targets: Array.from({ length: n }, (_, i) => ({
      name: `t${i}`,
      kind: 'tcp',
      target: `10.0.0.${i % 250}:80`,
      intervalSeconds: 1,
    })),
    store,
    now: () => NOW,
  });
  const { origin } = await serveApi(ctx, { now: () => NOW, rateLimit: false });
  await ctx.check(['t1']);
  const res = await fetch(`${origin}/api/v1/targets`, { headers: { authorization: `Bearer ${READ}` } });
  return { status: res.status, body: ((await res.json()) as { targets: TargetSummary[] }).targets };
}

describe('GET /api/v1/targets', () => {
  it('asks the store once for every target, not twice per target', async () => {
    const store = new CountingStore();
    // t7: a run in each of the last three minutes, one of them failed.
    for (const [ago, ok, d] of [
      [2, true, 0.004],
      [1, false, 0.9],
      [0, true, 0.002],
    ] as const)
      store.addProbe({
        time: NOW - ago * MIN,
        name: 't7',
        kind: 'tcp',
        target: '10.0.0.7:80',
        ok,
        durationSeconds: d,
        phases: {},
      });
    const { status, body } = await targets(store, 300);
    expect(status).toBe(200);
    expect(store.overviews).toHaveLength(1);
    expect(store.perTarget).toBe(0);
    // The last hour in whole minutes, ending with the current one.
    expect(store.overviews[0]).toMatchObject({ from: NOW - 30_000 + MIN - 60 * MIN, to: NOW - 30_000 + MIN });
    expect(store.overviews[0]!.names).toEqual(body.map((t) => t.name));
    const t7 = body.find((t) => t.name === 't7')!;
    expect(t7.window).toMatchObject({ p95: 0.004, successRatio: 2 / 3, runs: 3 });
    expect(t7.window.p50).toBeCloseTo(0.002, 5); // a histogram bucket's middle: within 0.05 %
    expect(t7.sparkline).toHaveLength(60);
    expect(t7.sparkline.slice(-3)).toEqual([
      [NOW - 30_000 - 2 * MIN, 0.004, 0],
      [NOW - 30_000 - MIN, null, 1],
      [NOW - 30_000, 0.002, 0],
    ]);
    // t1 was checked now: its run is in the window too, and its live state beside it.
    const t1 = body.find((t) => t.name === 't1')!;
    expect(t1.status).toBe('up');
    expect(t1.window.runs).toBe(1);
    expect(body.find((t) => t.name === 't2')!.window).toEqual({
      p50: null,
      p95: null,
      successRatio: null,
      runs: 0,
    });
  });

  it('keeps the live part when the store cannot answer', async () => {
    const store = new CountingStore();
    store.failing = true;
    const { status, body } = await targets(store, 3);
    expect(status).toBe(200);
    expect(body.map((t) => t.status)).toEqual(['unknown', 'up', 'unknown']);
    expect(body[1]!.last?.ok).toBe(true);
    expect(body.every((t) => t.window.runs === 0 && t.sparkline.length === 0)).toBe(true);
  });
});
