import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerStoreMetrics } from './store-metrics.js';

const stats = { queued: 3, written: 10, dropped: 1, flushes: 2, writeErrors: 0 };

describe('registerStoreMetrics', () => {
  it("exports the writer's figures and the overview's dropped runs, read at each scrape", async () => {
    const registry = new Registry();
    let dropped = 0;
    registerStoreMetrics(
      registry,
      () => stats,
      () => dropped,
    );
    expect(await registry.metrics()).toMatch(/^coalmine_store_overview_dropped_total 0$/m);
    dropped = 7;
    const text = await registry.metrics();
    expect(text).toMatch(/^coalmine_store_overview_dropped_total 7$/m);
    expect(text).toMatch(/^coalmine_store_written_total 10$/m);
    expect(text).toMatch(/^coalmine_store_queued 3$/m);
  });

  it('leaves the overview counter out when the store has none', async () => {
    const registry = new Registry();
    registerStoreMetrics(registry, () => stats);
    expect(await registry.metrics()).not.toContain('coalmine_store_overview_dropped_total');
  });
});
