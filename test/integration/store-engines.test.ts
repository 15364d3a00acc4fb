import { afterAll, describe, expect, it } from 'vitest';
import { LatencyHistogram } from '../../src/stats/histogram.js';
import { HOUR, MINUTE } from '../../src/store/aggregate.js';
import { postgresMigrations } from '../../src/store/postgres/migrations.js';
import { sqliteMigrations } from '../../src/store/sqlite/migrations.js';
import type { FlowRecord, ProbeRecord } from '../../src/store/types.js';
import { countRows, engines, exactPercentile, execSql, rng } from './store-support.js';

const DAY = 24 * HOUR;
const PCTS = [1, 5, 50, 90, 95, 99] as const;

/** Probe runs every `everyMs` over [from, to): lognormal-ish durations, 5 % failures, HTTP phases. */
function probeRuns(name: string, from: number, to: number, everyMs: number, seed = 1): ProbeRecord[] {
  const r = rng(seed);
  const out: ProbeRecord[] = [];
  for (let t = from; t < to; t += everyMs) {
    const ok = r() > 0.05;
    const d = Math.round(0.002 * Math.exp(r() * 4) * 1e9) / 1e9;
    const rec: ProbeRecord = {
      time: t,
      name,
      kind: 'http',
      target: `http://${name}.example/`,
      ok,
      durationSeconds: d,
      phases: { resolve: d * 0.1, connect: d * 0.2, processing: d * 0.7 },
    };
    if (!ok) {
      rec.errorCode = 'timeout';
      rec.errorMessage = 'no answer in 10s, "quoted", with, commas\nand a newline';
    }
    out.push(rec);
  }
  return out;
}

/** What a step of the series must show, computed from the raw runs themselves. */
function expectStep(runs: readonly ProbeRecord[]) {
  const okNs = runs
    .filter((x) => x.ok)
    .map((x) => Math.round(x.durationSeconds * 1e9))
    .sort((a, b) => a - b);
  return { count: runs.length, failures: runs.length - okNs.length, okNs };
}

function checkPoint(
  point: {
    count: number;
    failures: number;
    p1: number | null;
    p50: number | null;
    p99: number | null;
    max: number | null;
  } & Record<string, unknown>,
  runs: readonly ProbeRecord[],
): void {
  const e = expectStep(runs);
  expect(point.count).toBe(e.count);
  expect(point.failures).toBe(e.failures);
  if (e.okNs.length === 0) {
    expect(point.p50).toBeNull();
    return;
  }
  for (const p of PCTS) {
    const got = point[`p${p}`] as number;
    const want = exactPercentile(e.okNs, p) / 1e9;
    expect(Math.abs(got - want)).toBeLessThanOrEqual(want * 0.001);
  }
  // Rollups keep bucket midpoints for max (within 0.05 %); raw rows keep it exact.
  expect(Math.abs(point.max! - e.okNs.at(-1)! / 1e9)).toBeLessThanOrEqual((e.okNs.at(-1)! / 1e9) * 0.001);
}

function flowRecords(from: number, to: number, seed = 2): { records: FlowRecord[]; latenciesNs: number[] } {
  const r = rng(seed);
  const records: FlowRecord[] = [];
  const latenciesNs: number[] = [];
  for (let t = from; t < to; t += 10_000) {
    const h = new LatencyHistogram();
    for (let k = 0; k < 20; k++) {
      const v = Math.round(1e6 * (1 + r() * 30));
      h.record(v);
      latenciesNs.push(v);
    }
    records.push({
      time: t,
      intervalMs: 10_000,
      canary: 'eu-canary',
      coalminer: 'us-miner',
      transport: 'redis',
      region: 'us-east',
      runId: 'run1',
      received: 20,
      lost: t % 30_000 === 0 ? 1 : 0,
      duplicated: t % 60_000 === 0 ? 1 : 0,
      reordered: 0,
      late: 0,
      sendFailed: 0,
      inFlight: 3,
      droppedLocally: t % 20_000 === 0 ? 2 : 0,
      latency: h.toJSON(),
    });
  }
  return { records, latenciesNs };
}

for (const fx of engines()) {
  describe.skipIf(!fx.available)(`store on ${fx.engine}`, () => {
    afterAll(() => fx.cleanup());
    const now = Math.floor(Date.now() / HOUR) * HOUR;

    it('applies migrations once, also when opened again and concurrently', async () => {
      const spec = fx.freshSpec();
      const [a, b, c] = await Promise.all([fx.open(spec), fx.open(spec), fx.open(spec)]);
      await a!.writeProbes(probeRuns('m', now - HOUR, now - HOUR + MINUTE, 10_000));
      await a!.close();
      const again = await fx.open(spec);
      expect(await countRows(spec, 'SELECT count(*) AS n FROM schema_migrations')).toBe(
        (fx.engine === 'sqlite' ? sqliteMigrations : postgresMigrations).length,
      );
      expect(await countRows(spec, 'SELECT sum(n) AS n FROM probe_chunks')).toBe(6);
      expect(await again.integrityCheck()).toBe('ok');
      await b!.close();
      await c!.close();
    });

    it('answers raw series with exact percentiles (0.1 %), counts, heatmap and mean phases', async () => {
      const store = await fx.open();
      const from = now - 2 * HOUR;
      const runs = probeRuns('api', from, now, 1000, 7);
      await store.writeProbes(runs);
      const s = await store.probeSeries('api', from, now, 10 * MINUTE);
      expect(s.resolution).toBe('raw');
      expect(s.points).toHaveLength(12);
      for (const p of s.points) {
        const inStep = runs.filter((x) => x.time >= p.time && x.time < p.time + s.step);
        checkPoint(p as never, inStep);
        expect(p.heatmap!.reduce((a, b) => a + b, 0)).toBe(p.count - p.failures);
        const meanProcessing = inStep.reduce((a, x) => a + x.phases.processing!, 0) / inStep.length;
        expect(p.phases!.processing).toBeCloseTo(meanProcessing, 7);
      }
      expect(s.heatmapBounds).toHaveLength(s.points[0]!.heatmap!.length + 1);
      const w = await store.probeWindow('api', from, now);
      expect(w.runs).toBe(runs.length);
      expect(w.successRatio).toBeCloseTo(runs.filter((x) => x.ok).length / runs.length, 12);
      const all = expectStep(runs).okNs;
      expect(Math.abs(w.p95! - exactPercentile(all, 95) / 1e9)).toBeLessThanOrEqual(
        (exactPercentile(all, 95) / 1e9) * 0.001,
      );
      // A name nobody wrote: empty points, not an error.
      const none = await store.probeSeries('nobody', from, now, 10 * MINUTE);
      expect(none.points.every((p) => p.count === 0 && p.p50 === null)).toBe(true);
    });

    it('1-minute and 1-hour rollups agree with the raw data', async () => {
      const store = await fx.open();
      const from = now - 2 * DAY;
      const runs = probeRuns('web', from, now, 15_000, 11);
      // Written in several batches, out of order, as agents would.
      for (let k = 0; k < runs.length; k += 3000) await store.writeProbes(runs.slice(k, k + 3000).reverse());
      await store.rollup(now);
      const m = await store.probeSeries('web', now - DAY, now, 20 * MINUTE);
      expect(m.resolution).toBe('1m');
      expect(m.points).toHaveLength(72);
      for (const p of m.points)
        checkPoint(
          p as never,
          runs.filter((x) => x.time >= p.time && x.time < p.time + m.step),
        );
      const h = await store.probeSeries('web', from, now, 4 * HOUR);
      expect(h.resolution).toBe('1h');
      for (const p of h.points)
        checkPoint(
          p as never,
          runs.filter((x) => x.time >= p.time && x.time < p.time + h.step),
        );
      // Rolling up again changes nothing; a late result lands in its bucket on the next rollup.
      await store.rollup(now);
      const late = { ...runs[100]!, time: runs[100]!.time + 1, durationSeconds: 0.5, ok: true };
      await store.writeProbes([late]);
      await store.rollup(now);
      const again = await store.probeSeries('web', from, now, 4 * HOUR);
      const step = again.points.find((p) => late.time >= p.time && late.time < p.time + again.step)!;
      checkPoint(
        step as never,
        [...runs, late].filter((x) => x.time >= step.time && x.time < step.time + again.step),
      );
      // Data after the last rollup comes from raw rows.
      const fresh = probeRuns('web', now, now + 5 * MINUTE, 15_000, 12);
      await store.writeProbes(fresh);
      const tail = await store.probeSeries('web', now - DAY, now + 20 * MINUTE, 20 * MINUTE);
      expect(tail.points.at(-1)!.count).toBe(fresh.length);
    });

    it('rolls up incrementally: written and rolled up minute by minute, it equals one rollup of it all', async () => {
      // Three hours across a day boundary, one run every 5 s, as an agent writes them: a batch and a
      // rollup every minute, some results late into an earlier minute. The other store gets them all
      // and rolls up once. Minute by minute, each rollup rebuilds only the minutes written since the
      // last (rollup_dirty.lo and hi), merged into the stored hour and day blocks.
      const spec = fx.freshSpec();
      const inc = await fx.open(spec);
      const whole = await fx.open();
      const day = Math.floor(now / DAY) * DAY;
      const from = day - DAY - 90 * MINUTE;
      const to = from + 3 * HOUR;
      const runs = probeRuns('inc', from, to, 5000, 21);
      const late: ProbeRecord[] = [];
      for (let t = from; t < to; t += MINUTE) {
        const batch = runs.filter((x) => x.time >= t && x.time < t + MINUTE);
        // Every 7th minute keeps its last result back and writes it with the next minute's batch.
        if ((t - from) % (7 * MINUTE) === 0) late.push(batch.pop()!);
        else if (late.length > 0) batch.push(...late.splice(0));
        await inc.writeProbes(batch);
        await inc.rollup(now);
      }
      await inc.writeProbes(late);
      // A mark from before lo and hi were kept (null): its whole block is rebuilt, as then.
      const extra = { ...runs[30]!, time: runs[30]!.time + 2, durationSeconds: 0.25, ok: true };
      await inc.writeProbes([extra]);
      await execSql(spec, 'UPDATE rollup_dirty SET lo = NULL, hi = NULL');
      await inc.rollup(now);
      await whole.writeProbes([...runs, extra]);
      await whole.rollup(now);
      const all = [...runs, extra];
      for (const [start, end, step, resolution] of [
        [from - 4 * HOUR, to, 20 * MINUTE, '1m'],
        [day - 2 * DAY, day, 3 * HOUR, '1h'],
      ] as const) {
        const a = await inc.probeSeries('inc', start, end, step);
        const b = await whole.probeSeries('inc', start, end, step);
        expect(a.resolution).toBe(resolution);
        expect(a).toEqual(b);
        for (const p of a.points) {
          const inStep = all.filter((x) => x.time >= p.time && x.time < p.time + a.step);
          if (inStep.length > 0) checkPoint(p as never, inStep);
        }
      }
    });

    it('keeps raw runs in chunks: a batch a second becomes one chunk a minute at the rollup, reads unchanged', async () => {
      // As the writer writes at 1 s: a chunk per batch. The rollup merges the chunks of each minute it
      // rolls up; what it has not rolled up yet stays a chunk per batch.
      const spec = fx.freshSpec();
      const store = await fx.open(spec);
      const whole = await fx.open();
      const from = now - HOUR + 10 * MINUTE;
      const runs = probeRuns('chunky', from, from + 4 * MINUTE, 1000, 41);
      for (const r of runs) {
        await store.writeProbes([r]);
        if ((r.time - from) % MINUTE === MINUTE - 1000 && r.time < from + 3 * MINUTE) await store.rollup(now);
      }
      await whole.writeProbes(runs);
      expect(await countRows(spec, 'SELECT count(*) AS n FROM probe_chunks')).toBe(3 + 60);
      expect(await countRows(spec, 'SELECT sum(n) AS n FROM probe_chunks')).toBe(runs.length);
      const read = async (s: typeof store) => {
        const out: ProbeRecord[] = [];
        for await (const r of s.exportProbes('chunky', from, now)) out.push(r);
        return { out, series: await s.probeSeries('chunky', from, now, MINUTE) };
      };
      expect(await read(store)).toEqual(await read(whole));
      await store.rollup(now);
      expect(await countRows(spec, 'SELECT count(*) AS n FROM probe_chunks')).toBe(4);
      expect(await read(store)).toEqual(await read(whole));
    });

    it('grows a chunk of a target probed every 15 s over the minutes until it holds 60 runs', async () => {
      const spec = fx.freshSpec();
      const store = await fx.open(spec);
      const whole = await fx.open();
      const from = now - HOUR;
      const runs = probeRuns('sparse', from, from + 20 * MINUTE, 15_000, 43);
      for (let t = from; t < from + 20 * MINUTE; t += MINUTE) {
        for (const r of runs.filter((x) => x.time >= t && x.time < t + MINUTE)) await store.writeProbes([r]);
        await store.rollup(now);
      }
      await whole.writeProbes(runs);
      // Minutes 0-14 in one chunk of 60 runs, minutes 15-19 in the next.
      expect(await countRows(spec, 'SELECT count(*) AS n FROM probe_chunks')).toBe(2);
      expect(await countRows(spec, 'SELECT max(n) AS n FROM probe_chunks')).toBe(60);
      const read = async (s: typeof store) => {
        const out: ProbeRecord[] = [];
        for await (const r of s.exportProbes('sparse', from, now)) out.push(r);
        return { out, series: await s.probeSeries('sparse', from, now, MINUTE) };
      };
      const got = await read(store);
      expect(got.out).toHaveLength(runs.length);
      expect(got).toEqual(await read(whole));
    });

    it('merges new minutes into their hour and new hours into their day without reading the rest again', async () => {
      // Raw rows (and hour blocks) that are gone by the next rollup: a rollup that re-read the whole
      // hour or day would lose what they held; an incremental one keeps it.
      const spec = fx.freshSpec();
      const store = await fx.open(spec);
      const day = Math.floor(now / DAY) * DAY - DAY;
      const first = probeRuns('merge', day, day + 2 * HOUR, 10_000, 31);
      await store.writeProbes(first);
      await store.rollup(now);
      await execSql(spec, `DELETE FROM probe_chunks WHERE t1 < ${day + 2 * HOUR}`);
      await execSql(spec, `DELETE FROM rollup WHERE tier = 1 AND block = ${day}`);
      const next = probeRuns('merge', day + 2 * HOUR, day + 2 * HOUR + 5 * MINUTE, 10_000, 32);
      await store.writeProbes(next);
      await store.rollup(now);
      // The day block still has hour 0 (its hour block and raw rows are gone) and hours 1 and 2.
      const h = await store.probeSeries('merge', day - DAY, day + DAY, HOUR);
      expect(h.resolution).toBe('1h');
      const hours = [0, 1, 2].map((k) => h.points.find((p) => p.time === day + k * HOUR)!);
      expect(hours.map((p) => p.count)).toEqual([360, 360, 30]);
      for (const p of hours)
        checkPoint(
          p as never,
          [...first, ...next].filter((x) => x.time >= p.time && x.time < p.time + HOUR),
        );
    });

    it('flows: counts, loss and percentiles per step, raw and rolled up', async () => {
      const store = await fx.open();
      const from = now - 8 * HOUR;
      const { records, latenciesNs } = flowRecords(from, now);
      await store.writeFlows(records);
      const w = await store.flowWindow('eu-canary', 'us-miner', from, now);
      expect(w.received).toBe(records.length * 20);
      const lost = records.reduce((a, r) => a + r.lost, 0);
      expect(w.lost).toBe(lost);
      expect(w.lossRatio).toBeCloseTo(lost / (lost + w.received), 12);
      expect(w.inFlight).toBe(3);
      const sorted = [...latenciesNs].sort((a, b) => a - b);
      const want99 = exactPercentile(sorted, 99) / 1e9;
      expect(Math.abs(w.p99! - want99)).toBeLessThanOrEqual(want99 * 0.001);
      await store.rollup(now);
      const s = await store.flowSeries('eu-canary', 'us-miner', from, now, HOUR);
      expect(s.resolution).toBe('1h');
      expect(s.points.reduce((a, p) => a + p.count, 0)).toBe(w.received);
      expect(s.points.reduce((a, p) => a + p.failures, 0)).toBe(lost);
      expect(s.points.reduce((a, p) => a + (p.duplicated ?? 0), 0)).toBe(
        records.reduce((a, r) => a + r.duplicated, 0),
      );
      const raw = await store.flowSeries('eu-canary', 'us-miner', from, now, 30_000);
      expect(raw.resolution).toBe('raw');
      expect(raw.points.reduce((a, p) => a + p.count, 0)).toBe(w.received);
    });

    it('exports every raw row in time order across pages', async () => {
      const store = await fx.open();
      const from = now - 4 * HOUR;
      const runs = probeRuns('exp', from, now, 1000, 3); // 14,400 rows: three pages
      await store.writeProbes([...runs].reverse());
      await store.writeProbes(probeRuns('other', from, now, 60_000));
      const got: ProbeRecord[] = [];
      for await (const r of store.exportProbes('exp', from, now)) got.push(r);
      expect(got).toHaveLength(runs.length);
      expect(got.map((r) => r.time)).toEqual(runs.map((r) => r.time));
      const failed = runs.findIndex((r) => !r.ok);
      expect(got[failed]).toMatchObject({
        ok: false,
        errorCode: 'timeout',
        errorMessage: runs[failed]!.errorMessage,
      });
      expect(got[0]!.durationSeconds).toBeCloseTo(runs[0]!.durationSeconds, 9);
      expect(got[0]!.phases.connect).toBeCloseTo(runs[0]!.phases.connect!, 9);
    });

    it('retention removes raw rows and rollups past their tier', async () => {
      const spec = fx.freshSpec();
      const store = await fx.open(spec);
      const from = now - 3 * DAY;
      await store.writeProbes(probeRuns('old', from, now, 60_000));
      await store.rollup(now);
      const m1Before = await countRows(spec, 'SELECT count(*) AS n FROM rollup WHERE tier = 1');
      expect(m1Before).toBeGreaterThanOrEqual(72);
      await store.close();
      const tight = await fx.open(spec, { retention: { raw: HOUR, '1m': DAY, '1h': 2 * DAY } });
      await tight.rollup(now);
      expect(await countRows(spec, `SELECT count(*) AS n FROM probe_chunks WHERE t0 < ${now - HOUR}`)).toBe(
        0,
      );
      expect(await countRows(spec, 'SELECT sum(n) AS n FROM probe_chunks')).toBe(60);
      expect(
        await countRows(
          spec,
          `SELECT count(*) AS n FROM rollup WHERE tier = 1 AND block < ${now - DAY - HOUR}`,
        ),
      ).toBe(0);
      expect(await countRows(spec, 'SELECT count(*) AS n FROM rollup WHERE tier = 1')).toBeLessThan(m1Before);
      expect(
        await countRows(spec, `SELECT count(*) AS n FROM rollup WHERE tier = 2 AND block < ${now - 3 * DAY}`),
      ).toBe(0);
      expect(await countRows(spec, 'SELECT count(*) AS n FROM rollup WHERE tier = 2')).toBeGreaterThan(0);
      // What is left still answers: the 1-hour tier covers the last two days.
      const s = await tight.probeSeries('old', now - 2 * DAY, now, 6 * HOUR);
      expect(s.resolution).toBe('1h');
      expect(s.points.reduce((a, p) => a + p.count, 0)).toBe(2 * 24 * 60);
      expect(await tight.integrityCheck()).toBe('ok');
    });
  });
}
