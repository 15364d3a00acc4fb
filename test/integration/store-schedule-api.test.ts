/**
 * The canary's schedule end to end on each engine: ScheduleRecords through the batched writer into a real
 * store, read back over HTTP from GET /api/v1/flows/{canary}/{coalminer}/schedule, raw and rolled up.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ApiContext } from '../../src/api/v1/context.js';
import type { ScheduleSeries } from '../../src/api/v1/contract.js';
import { MemoryEvents } from '../support/memory-context.js';
import { closeServedApis, READ, serveApi } from '../support/serve-api.js';
import { HOUR, MINUTE } from '../../src/store/aggregate.js';
import type { ResultStore, ScheduleRecord } from '../../src/store/types.js';
import { BatchedWriter } from '../../src/store/writer.js';
import { engines } from './store-support.js';

afterEach(closeServedApis);

/** An agent that runs canary-us and a coalminer eu-west, over `store`. */
function context(store: ResultStore): ApiContext {
  return {
    version: 'test',
    targets: () => [],
    flows: () => [
      {
        canary: 'canary-us',
        coalminer: 'eu-west',
        transport: 'redis',
        region: 'eu-west-1',
        status: 'up',
        counts: {
          expected: 0,
          received: 0,
          lost: 0,
          inFlight: 0,
          sendFailed: 0,
          sendFailedArrived: 0,
          droppedLocally: 0,
          duplicated: 0,
          reordered: 0,
          late: 0,
          stale: 0,
        },
      },
    ],
    check: async () => [],
    events: new MemoryEvents(),
    store,
    status: () => ({
      version: 'test',
      startedAt: 0,
      targets: 0,
      flows: 1,
      store: { engine: store.engine, queued: 0, written: 0, dropped: 0, flushes: 0 },
    }),
  };
}

/**
 * A sample every 10 s for 30 minutes from `start`, 10 pings due each; minute 12 falls behind (up to 35
 * pings, 3.5 s at the worst sample) and minute 13 catches up.
 */
function samples(start: number): ScheduleRecord[] {
  const out: ScheduleRecord[] = [];
  for (let t = start; t < start + 30 * MINUTE; t += 10_000) {
    const minute = Math.floor((t - start) / MINUTE);
    const k = ((t - start) % MINUTE) / 10_000;
    const behind = minute === 12 ? 5 * (k + 2) : 0;
    out.push({
      time: t,
      intervalMs: 10_000,
      canary: 'canary-us',
      coalminer: 'eu-west',
      transport: 'redis',
      runId: 'a1',
      due: 10,
      attempted: minute === 12 ? (k === 0 ? 0 : 5) : minute === 13 && k === 0 ? 45 : 10,
      behind,
      behindSeconds: behind / 10,
    });
  }
  return out;
}

for (const fx of engines()) {
  describe.skipIf(!fx.available)(`schedule series over HTTP on ${fx.engine}`, () => {
    afterAll(() => fx.cleanup());

    it('reads back what the writer wrote: due and attempted sums, behind gauges by maximum', async () => {
      const now = Date.now();
      const start = Math.floor(now / HOUR) * HOUR - 2 * HOUR;
      const store = await fx.open(undefined, { nowMs: () => now });
      const writer = new BatchedWriter(store, { flushIntervalMs: 50, batchSize: 40 });
      const rows = samples(start);
      for (const r of rows) expect(writer.pushSchedule(r)).toBe(true);
      const stats = await writer.close();
      expect(stats).toMatchObject({ written: rows.length, dropped: 0, queued: 0 });

      const { origin } = await serveApi(context(store), { rateLimit: false, now: () => now });
      const get = async (q: string) => {
        const res = await fetch(`${origin}/api/v1/flows/canary-us/eu-west/schedule?${q}`, {
          headers: { authorization: `Bearer ${READ}` },
        });
        expect(res.status).toBe(200);
        return (await res.json()) as ScheduleSeries;
      };

      const raw = await get(`from=${start}&to=${start + HOUR}&step=5m`);
      expect(raw.resolution).toBe('raw');
      expect(raw.points).toHaveLength(12);
      expect(raw.points.slice(0, 6).map((p) => p.due)).toEqual([300, 300, 300, 300, 300, 300]);
      expect(raw.points.slice(6).map((p) => p.due)).toEqual([0, 0, 0, 0, 0, 0]);
      // Minutes 10-14: 300 due; attempted 60 in minutes 10, 11 and 14, 25 in minute 12, 45 + 50 in 13.
      expect(raw.points[2]).toEqual({
        time: start + 10 * MINUTE,
        due: 300,
        attempted: 180 + 25 + 95,
        behindSchedule: 35,
        behindScheduleSeconds: 3.5,
      });
      for (const [i, p] of raw.points.entries())
        if (i !== 2) expect([p.behindSchedule, p.behindScheduleSeconds], String(i)).toEqual([0, 0]);
      const total = (s: ScheduleSeries, f: (p: ScheduleSeries['points'][number]) => number) =>
        s.points.reduce((n, p) => n + f(p), 0);
      expect(total(raw, (p) => p.due)).toBe(1800);
      expect(total(raw, (p) => p.attempted)).toBe(1800);

      // Rolled up into 1-minute buckets, a long range reads the same sums and worst gauges.
      await store.rollup(now);
      const rolled = await get(`from=${start - 6 * HOUR}&to=${start + HOUR}&step=30m`);
      expect(rolled.resolution).toBe('1m');
      const step = rolled.points.find((p) => p.time === start)!;
      expect(step).toEqual({
        time: start,
        due: 1800,
        attempted: 1800,
        behindSchedule: 35,
        behindScheduleSeconds: 3.5,
      });
      expect(total(rolled, (p) => p.due)).toBe(1800);
    });
  });
}
