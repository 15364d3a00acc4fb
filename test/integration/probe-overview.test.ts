import { afterAll, describe, expect, it } from 'vitest';
import { HOUR, MINUTE } from '../../src/store/aggregate.js';
import type { ProbeRecord, ResultStore, TargetOverview } from '../../src/store/types.js';
import { engines, execSql, rng } from './store-support.js';

// The clock of these stores: 20 s into minute 30 of an hour, so the last hour spans two hour blocks.
const NOW = Date.UTC(2026, 0, 5, 10, 30, 20);
// As GET /api/v1/targets asks: the last hour in whole minutes, ending with the current one.
const TO = Math.floor(NOW / MINUTE) * MINUTE + MINUTE;
const FROM = TO - HOUR;

/** Runs of `name` every `everyMs` over [from, to): spread durations, about 7 % failures. */
function runs(
  name: string,
  from: number,
  to: number,
  everyMs: number,
  seed: number,
  kind = 'http',
): ProbeRecord[] {
  const r = rng(seed);
  const out: ProbeRecord[] = [];
  for (let t = from; t < to; t += everyMs) {
    const ok = r() > 0.07;
    const rec: ProbeRecord = {
      time: t + Math.floor(r() * 50),
      name,
      kind,
      target: `${kind}://${name}.example/`,
      ok,
      durationSeconds: Math.round(0.0005 * Math.exp(r() * 5) * 1e9) / 1e9,
      phases: { connect: 0.0001 },
    };
    if (!ok) rec.errorCode = 'timeout';
    out.push(rec);
  }
  return out;
}

const NAMES = ['every-second', 'every-15s', 'failing', 'changed-kind', 'one-run', 'nothing-stored'];

function fill(): ProbeRecord[] {
  return [
    ...runs('every-second', FROM - 10 * MINUTE, NOW, 1000, 1),
    ...runs('every-15s', FROM - HOUR, NOW, 15_000, 2),
    ...runs('failing', FROM, NOW, 5000, 3).map((x) => ({ ...x, ok: false, errorCode: 'refused' })),
    // Two series of one name (its kind changed): the overview merges them, as probeWindow does.
    ...runs('changed-kind', FROM, FROM + 20 * MINUTE, 2000, 4, 'tcp'),
    ...runs('changed-kind', FROM + 20 * MINUTE, NOW, 2000, 5),
    ...runs('one-run', FROM + 7 * MINUTE, FROM + 7 * MINUTE + 1, 1000, 6),
    // Not asked for: must not show up, nor cost.
    ...runs('not-configured', FROM, NOW, 1000, 7),
  ].sort((a, b) => a.time - b.time);
}

/** The per-target path GET /targets took before: probeWindow and probeSeries, one target at a time. */
async function perTarget(store: ResultStore, name: string, from = FROM, to = TO): Promise<TargetOverview> {
  const w = await store.probeWindow(name, from, to);
  const s = await store.probeSeries(name, from, to, MINUTE);
  return {
    window: { runs: w.runs, failures: w.failures, successRatio: w.successRatio, p50: w.p50, p95: w.p95 },
    points: s.points.map((p) => ({ time: p.time, p50: p.p50, failures: p.failures, runs: p.count })),
  };
}

/** Latencies from rollups are bucket midpoints: within 0.05 % of the raw runs' (0.1 % allowed). */
function near(actual: number | null, expected: number | null, what: string): void {
  if (expected === null) return void expect(actual, what).toBeNull();
  expect(actual, what).not.toBeNull();
  expect(Math.abs(actual! - expected) / expected, `${what}: ${actual} against ${expected}`).toBeLessThan(
    1e-3,
  );
}

async function expectSameAsPerTarget(store: ResultStore, from = FROM, to = TO): Promise<TargetOverview[]> {
  const got = await store.probeOverview(NAMES, from, to);
  expect(got).toHaveLength(NAMES.length);
  for (const [i, name] of NAMES.entries()) {
    const want = await perTarget(store, name, from, to);
    const o = got[i]!;
    expect({ ...o.window, p50: 0, p95: 0 }, name).toEqual({ ...want.window, p50: 0, p95: 0 });
    near(o.window.p50, want.window.p50, `${name} p50`);
    near(o.window.p95, want.window.p95, `${name} p95`);
    expect(o.points.map((p) => [p.time, p.runs, p.failures])).toEqual(
      want.points.map((p) => [p.time, p.runs, p.failures]),
    );
    o.points.forEach((p, k) => near(p.p50, want.points[k]!.p50, `${name} point ${k} p50`));
  }
  return got;
}

/** The hour a call at `now` asks for. */
const hourAt = (now: number) => {
  const to = Math.floor(now / MINUTE) * MINUTE + MINUTE;
  return { from: to - HOUR, to };
};

for (const fx of engines()) {
  describe.skipIf(!fx.available)(`probeOverview on ${fx.engine}`, () => {
    afterAll(() => fx.cleanup());

    it('gives what probeWindow and probeSeries give per target, before, across and after rollups', async () => {
      const store = await fx.open(undefined, { nowMs: () => NOW });
      const all = fill();
      const before = all.filter((x) => x.time < NOW - 5 * MINUTE);
      const after = all.filter((x) => x.time >= NOW - 5 * MINUTE);

      // Nothing rolled up yet: all of it from what this store wrote since.
      await store.writeProbes(before);
      await expectSameAsPerTarget(store);

      // Rolled up: all of it from the blocks.
      await store.rollup(NOW - 5 * MINUTE + 1);
      await expectSameAsPerTarget(store);

      // Written after the rollup, some into the minute it rolled up last: blocks and what came since.
      await store.writeProbes(after);
      await expectSameAsPerTarget(store);
      await store.rollup(NOW);
      await expectSameAsPerTarget(store);

      // A late write into a minute already rolled up, then a rollup: the block changed, the next call sees it.
      await store.writeProbes(runs('every-15s', FROM + 3 * MINUTE, FROM + 4 * MINUTE, 5000, 8));
      await expectSameAsPerTarget(store);
      await store.rollup(NOW);
      const [o] = await store.probeOverview(['every-15s'], FROM, TO);
      expect(o!.points[3]!.runs).toBe(4 + 12);
      await expectSameAsPerTarget(store);
    });

    it('counts each run once when another agent rolls up the shared store', async () => {
      const spec = fx.freshSpec();
      let clock = NOW;
      const agent = await fx.open(spec, { nowMs: () => clock });
      const other = await fx.open(spec, { nowMs: () => clock });
      const all = fill();
      await agent.writeProbes(all.filter((x) => x.time < NOW - 5 * MINUTE));
      await expectSameAsPerTarget(agent);
      // The other agent's rollup started after those writes: they are in its blocks, not counted twice.
      await other.rollup(clock + 1);
      await expectSameAsPerTarget(agent);
      clock += 2;
      await agent.writeProbes(all.filter((x) => x.time >= NOW - 5 * MINUTE));
      await expectSameAsPerTarget(agent);
      await other.rollup(clock + 1);
      await expectSameAsPerTarget(agent);
    });

    it('answers the hour from memory, across an hour boundary and rollups, without reading the store', async () => {
      const spec = fx.freshSpec();
      let clock = FROM - 10 * MINUTE;
      const store = await fx.open(spec, { nowMs: () => clock });
      const all = fill();
      // A minute at a time as the agent writes, a rollup every 10 minutes; NOW's hour began 30 minutes ago.
      let k = 0;
      for (clock = FROM; clock <= NOW; clock += MINUTE) {
        const batch: ProbeRecord[] = [];
        while (k < all.length && all[k]!.time < clock) batch.push(all[k++]!);
        await store.writeProbes(batch);
        if ((clock - FROM) % (10 * MINUTE) === 0) await store.rollup(clock);
      }
      clock = NOW;
      await store.writeProbes(all.slice(k));
      const before = await expectSameAsPerTarget(store);
      await store.rollup(NOW);
      expect(await expectSameAsPerTarget(store)).toEqual(before);
      // The rollups and raw runs gone behind its back: the per-target path now finds nothing, this the same.
      await execSql(spec, 'DELETE FROM rollup');
      await execSql(spec, 'DELETE FROM probe_chunks');
      expect((await perTarget(store, 'every-second')).window.runs).toBe(0);
      expect(await store.probeOverview(NAMES, FROM, TO)).toEqual(before);
    });

    it("counts another agent's runs once a rollup shows the store is shared", async () => {
      const spec = fx.freshSpec();
      const agent = await fx.open(spec, { nowMs: () => NOW });
      const other = await fx.open(spec, { nowMs: () => NOW });
      const all = fill();
      // The same targets probed by both agents, every other run each.
      await agent.writeProbes(all.filter((_, i) => i % 2 === 0));
      await other.writeProbes(all.filter((_, i) => i % 2 === 1));
      // The agent rolls up first, so only its second rollup sees the other's mark.
      await agent.rollup(NOW);
      await other.rollup(NOW);
      await agent.rollup(NOW);
      await expectSameAsPerTarget(agent);
      await other.writeProbes(runs('every-15s', FROM + 3 * MINUTE, FROM + 4 * MINUTE, 5000, 9));
      await other.rollup(NOW);
      const [o] = await agent.probeOverview(['every-15s'], FROM, TO);
      expect(o!.points[3]!.runs).toBe(4 + 12);
      await expectSameAsPerTarget(agent);
    });

    it('on a store that already held runs, answers from the store until its own hour is in memory', async () => {
      const spec = fx.freshSpec();
      const all = fill();
      const first = await fx.open(spec, { nowMs: () => NOW });
      await first.writeProbes(all.filter((x) => x.time < NOW - 5 * MINUTE));
      await first.close(); // never rolled up: its runs are only raw
      let clock = NOW;
      const store = await fx.open(spec, { nowMs: () => clock });
      await store.writeProbes(all.filter((x) => x.time >= NOW - 5 * MINUTE));
      await store.rollup(NOW);
      await expectSameAsPerTarget(store);
      // An hour and a half of its own runs later, the hour it is asked for is all its own: from memory.
      const later = NOW + 90 * MINUTE;
      const own = NAMES.slice(0, 3).flatMap((name, i) => runs(name, NOW, later, 10_000, 20 + i));
      own.sort((a, b) => a.time - b.time);
      for (let t = NOW; t < later; t += 10 * MINUTE) {
        clock = t + 10 * MINUTE;
        await store.writeProbes(own.filter((x) => x.time >= t && x.time < t + 10 * MINUTE));
        await store.rollup(clock);
      }
      const { from, to } = hourAt(later - 1);
      const got = await expectSameAsPerTarget(store, from, to);
      await execSql(spec, 'DELETE FROM rollup');
      expect(await store.probeOverview(NAMES, from, to)).toEqual(got);
    });

    it('answers for names it has no runs of, and refuses ranges that are not whole minutes', async () => {
      const store = await fx.open(undefined, { nowMs: () => NOW });
      const [o] = await store.probeOverview(['nothing'], FROM, TO);
      expect(o!.window).toEqual({ runs: 0, failures: 0, successRatio: null, p50: null, p95: null });
      expect(o!.points).toHaveLength(60);
      expect(o!.points.every((p) => p.runs === 0 && p.p50 === null)).toBe(true);
      await expect(store.probeOverview(['x'], FROM + 1, TO)).rejects.toThrow(RangeError);
      await expect(store.probeOverview(['x'], TO, FROM)).rejects.toThrow(RangeError);
    });
  });
}
