import { afterEach, describe, expect, it } from 'vitest';
import type { FlowSummary, ScheduleSeries, Series } from './contract.js';
import type { FlowInfo } from './context.js';
import { MemoryContext, MemoryStore } from '../../../test/support/memory-context.js';
import { openApiDocument } from './openapi.js';
import { closeServedApis, READ, serveApi } from '../../../test/support/serve-api.js';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const MIN = 60_000;

afterEach(closeServedApis);

const counts = (droppedLocally: number): FlowSummary['counts'] => ({
  expected: 100,
  received: 90,
  lost: 2,
  inFlight: 0,
  sendFailed: 0,
  sendFailedArrived: 0,
  droppedLocally,
  duplicated: 0,
  reordered: 0,
  late: 0,
  stale: 0,
});

const flow = (canary: string, coalminer: string, droppedLocally = 0): FlowInfo => ({
  canary,
  coalminer,
  transport: 'redis',
  region: 'eu-west-1',
  status: 'up',
  counts: counts(droppedLocally),
});

async function serve(opts: { store?: boolean } = {}) {
  const store = new MemoryStore();
  // canary-us -> eu-west: on schedule, 15 minutes ago 40 pings (4 s) behind, caught up the next minute.
  for (let k = 30; k > 0; k--) {
    const behind = k === 15 ? 40 : 0;
    store.addSchedule({
      time: NOW - k * MIN,
      canary: 'canary-us',
      coalminer: 'eu-west',
      due: 600,
      attempted: k === 15 ? 560 : k === 14 ? 640 : 600,
      behind,
      behindSeconds: behind / 10,
    });
  }
  store.addFlow({
    time: NOW - 5 * MIN,
    canary: 'canary-us',
    coalminer: 'eu-west',
    received: 10,
    lost: 1,
    duplicated: 0,
    reordered: 0,
    late: 0,
    droppedLocally: 3,
    latencies: [0.01],
  });
  const ctx = new MemoryContext({
    now: () => NOW,
    targets: [],
    flows: [flow('canary-us', 'eu-west', 3)],
    // This agent also runs canary-us, which pings ap-south (received by another agent's coalminer).
    canaries: [
      {
        canary: 'canary-us',
        coalminer: 'ap-south',
        due: 10,
        attempted: 10,
        sent: 10,
        sendFailed: 0,
        behindSchedule: 0,
        behindScheduleSeconds: 0,
      },
      {
        canary: 'canary-us',
        coalminer: '(pruned)',
        due: 5,
        attempted: 5,
        sent: 5,
        sendFailed: 0,
        behindSchedule: 0,
        behindScheduleSeconds: 0,
      },
    ],
    ...(opts.store === false ? {} : { store }),
  });
  const { origin } = await serveApi(ctx, { now: () => NOW, rateLimit: false });
  return { url: `${origin}/api/v1`, store };
}

async function get<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${READ}` } });
  return { status: res.status, body: (await res.json()) as T };
}

interface ErrorBody {
  error: { code: string; message: string };
}

describe('GET flows/{canary}/{coalminer}/schedule', () => {
  it('answers due, attempted and the worst behind-schedule gauges per step', async () => {
    const h = await serve();
    const from = NOW - 30 * MIN;
    const { status, body } = await get<ScheduleSeries>(
      `${h.url}/flows/canary-us/eu-west/schedule?from=${from}&to=${NOW}&step=10m`,
    );
    expect(status).toBe(200);
    expect(body).toMatchObject({ from, to: NOW, step: 600_000, resolution: 'raw' });
    expect(body.points).toEqual([
      { time: from, due: 6000, attempted: 6000, behindSchedule: 0, behindScheduleSeconds: 0 },
      {
        time: from + 10 * MIN,
        due: 6000,
        attempted: 6000,
        behindSchedule: 40,
        behindScheduleSeconds: 4,
      },
      { time: from + 20 * MIN, due: 6000, attempted: 6000, behindSchedule: 0, behindScheduleSeconds: 0 },
    ]);
  });

  it('takes the series routes’ defaults: the last hour, about 300 points', async () => {
    const h = await serve();
    const { body } = await get<ScheduleSeries>(`${h.url}/flows/canary-us/eu-west/schedule`);
    expect(body).toMatchObject({ from: NOW - 60 * MIN, to: NOW, step: 15_000 });
    expect(body.points).toHaveLength(240);
    expect(body.points.reduce((n, p) => n + p.due, 0)).toBe(30 * 600);
  });

  it("knows the pairs this agent's own canaries ping, but not the pruned sum", async () => {
    const h = await serve();
    const ok = await get<ScheduleSeries>(`${h.url}/flows/canary-us/ap-south/schedule?step=1h`);
    expect(ok.status).toBe(200);
    expect(ok.body.points).toEqual([
      { time: NOW - 60 * MIN, due: 0, attempted: 0, behindSchedule: 0, behindScheduleSeconds: 0 },
    ]);
    const pruned = await get<ErrorBody>(`${h.url}/flows/canary-us/(pruned)/schedule`);
    expect(pruned.status).toBe(404);
    // The flow series is the coalminer's side: only flows this agent's coalminers receive.
    const series = await get<ErrorBody>(`${h.url}/flows/canary-us/ap-south/series`);
    expect(series.status).toBe(404);
  });

  it('answers bad queries with 400, unknown flows with 404 and no store with 503', async () => {
    const h = await serve();
    const cases: [string, number, string, RegExp][] = [
      ['canary-us/eu-west/schedule?from=soon', 400, 'invalid_query', /"from" must be Unix milliseconds/],
      [`canary-us/eu-west/schedule?from=${NOW}&to=${NOW - MIN}`, 400, 'invalid_query', /before "to"/],
      ['canary-us/eu-west/schedule?step=1ms', 400, 'invalid_query', /at least 1000 ms/],
      [
        `canary-us/eu-west/schedule?from=${NOW - 7 * 86_400_000}&to=${NOW}&step=60s`,
        400,
        'invalid_query',
        /at most 2000/,
      ],
      ['canary-us/eu-west/schedule?form=1', 400, 'unknown_parameter', /unknown query parameter "form"/],
      [
        'canary-eu/eu-west/schedule',
        404,
        'not_found',
        /no configured flow named "canary-eu\/eu-west"; configured: "canary-us\/eu-west", "canary-us\/ap-south"$/,
      ],
    ];
    for (const [path, status, code, message] of cases) {
      const res = await get<ErrorBody>(`${h.url}/flows/${path}`);
      expect(res.status, path).toBe(status);
      expect(res.body.error.code, path).toBe(code);
      expect(res.body.error.message, path).toMatch(message);
    }
    const none = await serve({ store: false });
    const res = await get<ErrorBody>(`${none.url}/flows/canary-us/eu-west/schedule`);
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('no_store');
  });

  it('flows carry droppedLocally in their counts and series', async () => {
    const h = await serve();
    const { body } = await get<{ flows: FlowSummary[] }>(`${h.url}/flows`);
    expect(body.flows[0]!.counts.droppedLocally).toBe(3);
    const s = await get<Series>(`${h.url}/flows/canary-us/eu-west/series?step=1h`);
    expect(s.body.points[0]).toMatchObject({ count: 10, failures: 1, droppedLocally: 3 });
  });

  it('is documented with every field it answers', async () => {
    type Schema = { properties: Record<string, unknown>; required?: string[] };
    const doc = openApiDocument('1.2.3') as unknown as { components: { schemas: Record<string, Schema> } };
    const schemas = doc.components.schemas;
    const h = await serve();
    const { body } = await get<ScheduleSeries>(`${h.url}/flows/canary-us/eu-west/schedule?step=1h`);
    expect(Object.keys(body).sort()).toEqual(Object.keys(schemas.ScheduleSeries!.properties).sort());
    expect(Object.keys(body.points[0]!).sort()).toEqual(
      Object.keys(schemas.SchedulePoint!.properties).sort(),
    );
    const s = await get<Series>(`${h.url}/flows/canary-us/eu-west/series?step=1h`);
    for (const key of Object.keys(s.body.points[0]!))
      expect(schemas.SeriesPoint!.properties, key).toHaveProperty(key);
  });
});
