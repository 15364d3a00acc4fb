import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchedWriter } from '../../src/store/writer.js';
import type { ProbeRecord, ResultStore } from '../../src/store/types.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { pgUp, postgresFixture, PG_HOST, PG_PORT, sqliteFixture } from './store-support.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let seq = 0;
const probe = (): ProbeRecord => ({
  time: Date.now(),
  name: 'stall',
  kind: 'tcp',
  target: 'h:1',
  ok: true,
  durationSeconds: 0.001 + (seq++ % 100) / 1e5,
  phases: { connect: 0.001 },
});

/**
 * Produces `perTick` results every 10 ms for `ms`, as probes would, and watches the event loop: returns
 * the longest gap between ticks and the most the writer ever held.
 */
async function produce(w: BatchedWriter, ms: number, perTick: number, maxQueue: number) {
  let maxGap = 0;
  let maxQueued = 0;
  let pushed = 0;
  let last = performance.now();
  const end = last + ms;
  while (performance.now() < end) {
    await sleep(10);
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    const t0 = performance.now();
    for (let i = 0; i < perTick; i++) {
      w.pushProbe(probe());
      pushed++;
    }
    // A push is an array append, whatever the store does.
    expect(performance.now() - t0).toBeLessThan(50);
    maxQueued = Math.max(maxQueued, w.stats().queued);
    expect(w.stats().queued).toBeLessThanOrEqual(maxQueue);
  }
  return { maxGap, maxQueued, pushed };
}

async function rows(store: ResultStore): Promise<number> {
  let n = 0;
  for await (const _ of store.exportProbes('stall', 0, Date.now() + 60_000)) n++;
  return n;
}

describe('the writer when the store stalls', () => {
  const sqlite = sqliteFixture();
  const postgres = postgresFixture();
  afterAll(async () => {
    await sqlite.cleanup();
    await postgres.cleanup();
  });

  it('SQLite locked by another connection: producers go on, the queue stays bounded, drops are counted, writing resumes', async () => {
    const spec = sqlite.freshSpec();
    const store = await sqlite.open(spec);
    const maxQueue = 2000;
    const w = new BatchedWriter(store, {
      flushIntervalMs: 50,
      batchSize: 500,
      maxQueue,
      minBackoffMs: 20,
      maxBackoffMs: 100,
    });
    await produce(w, 200, 20, maxQueue);
    await sleep(100);
    const before = w.stats();
    expect(before).toMatchObject({ queued: 0, dropped: 0 });

    const locker = new Database(spec.slice('sqlite:'.length));
    locker.exec('BEGIN EXCLUSIVE');
    locker.prepare("INSERT INTO meta (key, value) VALUES ('lock', 1)").run();
    const stalled = await produce(w, 1500, 50, maxQueue);
    const during = w.stats();
    expect(during.written).toBe(before.written);
    expect(during.dropped).toBeGreaterThan(0);
    expect(stalled.maxQueued).toBe(maxQueue);
    expect(during.lastError).toMatch(/locked|busy/i);
    // The event loop kept ticking: waits on the lock are bounded by the short busy timeout.
    expect(stalled.maxGap).toBeLessThan(250);

    locker.exec('ROLLBACK');
    locker.close();
    await sleep(600);
    const after = w.stats();
    expect(after.queued).toBe(0);
    expect(after.written).toBe(before.written + maxQueue);
    expect(after.written + after.dropped).toBe(before.written + stalled.pushed);
    expect(await rows(store)).toBe(after.written);
    await w.close();
  });

  it.skipIf(!pgUp)(
    'PostgreSQL unreachable (proxy down): producers go on, drops are counted, writing resumes when it is back',
    async () => {
      const proxy = await startTcpProxy({ host: PG_HOST, port: PG_PORT });
      try {
        const fx = postgresFixture(proxy.port);
        const spec = fx.freshSpec();
        const store = await fx.open(spec);
        const maxQueue = 2000;
        const w = new BatchedWriter(store, {
          flushIntervalMs: 50,
          batchSize: 500,
          maxQueue,
          minBackoffMs: 20,
          maxBackoffMs: 200,
        });
        await produce(w, 200, 20, maxQueue);
        await sleep(200);
        const before = w.stats();
        expect(before).toMatchObject({ queued: 0, dropped: 0 });

        proxy.down();
        const stalled = await produce(w, 1500, 50, maxQueue);
        const during = w.stats();
        expect(during.dropped).toBeGreaterThan(0);
        expect(stalled.maxQueued).toBe(maxQueue);
        expect(during.lastError).toBeDefined();
        expect(stalled.maxGap).toBeLessThan(250);

        proxy.up();
        const t0 = Date.now();
        while (w.stats().queued > 0 && Date.now() - t0 < 10_000) await sleep(50);
        const after = w.stats();
        expect(after.queued).toBe(0);
        expect(after.written).toBeGreaterThanOrEqual(before.written + maxQueue);
        expect(after.written + after.dropped).toBe(before.written + stalled.pushed);
        expect(await rows(store)).toBe(after.written);
        await w.close();
        await fx.cleanup();
      } finally {
        await proxy.close();
      }
    },
  );
});
