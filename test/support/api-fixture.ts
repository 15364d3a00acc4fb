// The API tests' agent: two targets (web with an hour of runs in the store, db), three flows, and a
// probe for check() (db times out). Not a test file itself.
import type { ProbeReport } from '../../src/core/report.js';
import { MemoryContext, MemoryStore, type MemoryContextOptions } from './memory-context.js';

/** The fixture's clock: 2025-01-01 12:00:30 UTC. */
export const NOW = Date.UTC(2025, 0, 1, 12, 0, 30);
const MIN = 60_000;

export function apiFixture(
  withStore = true,
  more: Partial<MemoryContextOptions> = {},
): { ctx: MemoryContext; store: MemoryStore } {
  const store = new MemoryStore();
  // web: one run a minute, at 30 s past, from 11:01:30 to 12:00:30 (NOW); every 10th fails. 1..60 ms.
  for (let i = 0; i < 60; i++) {
    const time = NOW - (59 - i) * MIN;
    const ok = i % 10 !== 0;
    store.addProbe({
      time,
      name: 'web',
      kind: 'http',
      target: 'http://example.internal/',
      ok,
      durationSeconds: (i + 1) / 1000,
      phases: { connect: 0.0005, processing: (i + 1) / 2000 },
      ...(ok ? {} : { errorCode: 'http_status', errorMessage: 'status 503, "quoted", with comma' }),
    });
  }
  store.addFlow({
    time: NOW - 10 * MIN,
    canary: 'canary-us',
    coalminer: 'eu-west',
    received: 4,
    lost: 1,
    duplicated: 1,
    reordered: 2,
    late: 0,
    latencies: [0.01, 0.02, 0.03, 0.04],
  });
  const counts = {
    expected: 100,
    received: 99,
    lost: 1,
    inFlight: 0,
    sendFailed: 0,
    sendFailedArrived: 0,
    droppedLocally: 0,
    duplicated: 1,
    reordered: 2,
    late: 0,
    stale: 0,
  };
  const ctx = new MemoryContext({
    version: '9.9.9',
    now: () => NOW,
    targets: [
      { name: 'web', kind: 'http', target: 'http://example.internal/', intervalSeconds: 60 },
      { name: 'db', kind: 'tcp', target: 'db.internal:5432', intervalSeconds: 5 },
    ],
    flows: [
      {
        canary: 'canary-us',
        coalminer: 'eu-west',
        transport: 'ws',
        region: 'eu-west-1',
        status: 'up',
        counts,
      },
      {
        canary: 'canary-us',
        coalminer: 'ap-south',
        transport: 'ws',
        region: 'ap-south-1',
        status: 'down',
        counts,
        window: { p50: 0.2, p95: 0.3, p99: 0.4, lossRatio: 0.5, received: 10 },
      },
      {
        canary: 'canary-eu',
        coalminer: 'eu-west',
        transport: 'ws',
        region: 'eu-west-1',
        status: 'unknown',
        counts,
      },
    ],
    ...(withStore ? { store } : {}),
    probe: (t): Omit<ProbeReport, 'name' | 'kind' | 'target' | 'time'> =>
      t.name === 'db'
        ? {
            ok: false,
            durationSeconds: 2,
            phases: {},
            error: { code: 'timeout', message: 'no answer in 2 s' },
          }
        : { ok: true, durationSeconds: 0.004, phases: { connect: 0.001, processing: 0.003 } },
    ...more,
  });
  return { ctx, store };
}
