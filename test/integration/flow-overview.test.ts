import { afterAll, describe, expect, it } from 'vitest';
import { HOUR, MINUTE } from '../../src/store/aggregate.js';
import { LatencyHistogram } from '../../src/stats/histogram.js';
import type { FlowOverview, FlowRecord, ResultStore } from '../../src/store/types.js';
import { engines, rng } from './store-support.js';

// 20 s into minute 30 of an hour, so the last hour spans two hour blocks (and rollups close one).
const NOW = Date.UTC(2026, 0, 5, 10, 30, 20);
const TO = Math.floor(NOW / MINUTE) * MINUTE + MINUTE;
const FROM = TO - HOUR;

/** A flow's 10 s intervals over [from, to): received pings with latencies, some lost, an in-flight gauge. */
function intervals(
  canary: string,
  coalminer: string,
  from: number,
  to: number,
  seed: number,
  region = 'eu',
): FlowRecord[] {
  const r = rng(seed);
  const out: FlowRecord[] = [];
  for (let t = from; t < to; t += 10_000) {
    const h = new LatencyHistogram();
    const received = Math.floor(r() * 12);
    for (let k = 0; k < received; k++) h.record(Math.round(2e5 * Math.exp(r() * 6)));
    out.push({
      time: t + Math.floor(r() * 100),
      intervalMs: 10_000,
      canary,
      coalminer,
      transport: 'redis',
      region,
      runId: `run-${seed}`,
      received,
      lost: r() < 0.2 ? 1 + Math.floor(r() * 3) : 0,
      duplicated: r() < 0.05 ? 1 : 0,
      reordered: 0,
      late: 0,
      sendFailed: 0,
      inFlight: Math.floor(r() * 4),
      droppedLocally: 0,
      latency: h.toJSON(),
    });
  }
  return out;
}

const FLOWS = [
  { canary: 'c-eu', coalminer: 'm-us' },
  { canary: 'c-eu', coalminer: 'm-ap' },
  // Its region changed halfway: two series of one flow, merged as flowWindow merges them.
  { canary: 'c-us', coalminer: 'm-eu' },
  { canary: 'c-late', coalminer: 'm-us' },
  { canary: 'nobody', coalminer: 'nowhere' },
];

function fill(): FlowRecord[] {
  return [
    ...intervals('c-eu', 'm-us', FROM - 20 * MINUTE, NOW, 1),
    ...intervals('c-eu', 'm-ap', FROM + 10 * MINUTE, FROM + 40 * MINUTE, 2),
    ...intervals('c-us', 'm-eu', FROM, FROM + 30 * MINUTE, 3, 'us'),
    ...intervals('c-us', 'm-eu', FROM + 30 * MINUTE, NOW, 4, 'eu'),
    ...intervals('c-late', 'm-us', NOW - 3 * MINUTE, NOW, 5),
    // Not asked for: must not show up.
    ...intervals('c-eu', 'not-asked', FROM, NOW, 6),
  ].sort((a, b) => a.time - b.time);
}

/** The per-flow path GET /flows took before: flowWindow and flowSeries, one flow at a time. */
async function perFlow(store: ResultStore, canary: string, coalminer: string): Promise<FlowOverview> {
  const w = await store.flowWindow(canary, coalminer, FROM, TO);
  const s = await store.flowSeries(canary, coalminer, FROM, TO, MINUTE);
  return {
    window: { p50: w.p50, p95: w.p95, p99: w.p99, lossRatio: w.lossRatio, received: w.received },
    points: s.points.map((p) => ({ time: p.time, p50: p.p50, failures: p.failures })),
  };
}

async function expectSameAsPerFlow(store: ResultStore): Promise<FlowOverview[]> {
  const got = await store.flowOverview(FLOWS, FROM, TO);
  expect(got).toHaveLength(FLOWS.length);
  for (const [i, f] of FLOWS.entries())
    expect(got[i], `${f.canary}/${f.coalminer}`).toEqual(await perFlow(store, f.canary, f.coalminer));
  return got;
}

for (const fx of engines()) {
  describe.skipIf(!fx.available)(`flowOverview on ${fx.engine}`, () => {
    afterAll(() => fx.cleanup());

    it('gives what flowWindow and flowSeries give per flow, before and after rollups and late writes', async () => {
      const store = await fx.open(undefined, { nowMs: () => NOW });
      const all = fill();
      await store.writeFlows(all.filter((x) => x.time < NOW - 5 * MINUTE));
      const first = await expectSameAsPerFlow(store);
      expect(first[0]!.window.received).toBeGreaterThan(0);
      expect(first[4]!.window).toEqual({ p50: null, p95: null, p99: null, lossRatio: null, received: 0 });
      expect(first[4]!.points).toHaveLength(60);

      // A rollup closes the hour before NOW's: the answer is the same (raw rows are kept).
      await store.rollup(NOW - 5 * MINUTE + 1);
      await expectSameAsPerFlow(store);
      await store.writeFlows(all.filter((x) => x.time >= NOW - 5 * MINUTE));
      const after = await expectSameAsPerFlow(store);
      expect(after[3]!.window.received).toBeGreaterThan(0);
      await store.rollup(NOW);
      // A late interval in a minute already rolled up.
      await store.writeFlows(intervals('c-eu', 'm-ap', FROM + 5 * MINUTE, FROM + 6 * MINUTE, 7));
      const late = await expectSameAsPerFlow(store);
      expect(late[1]!.points[5]!.p50).not.toBeNull();
    });

    it('refuses ranges that are not whole minutes or longer than raw rows answer', async () => {
      const store = await fx.open(undefined, { nowMs: () => NOW });
      await expect(store.flowOverview(FLOWS, FROM + 1, TO)).rejects.toThrow(RangeError);
      await expect(store.flowOverview(FLOWS, TO, FROM)).rejects.toThrow(RangeError);
      await expect(store.flowOverview(FLOWS, TO - 7 * HOUR, TO)).rejects.toThrow(/at most 6 h/);
    });
  });
}
