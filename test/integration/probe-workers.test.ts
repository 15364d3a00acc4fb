import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { parseConfig } from '../../src/config/load.js';
import type { Observation } from '../../src/core/types.js';

// An agent whose probes run in worker threads must report what one that runs them itself reports:
// the same runs per target, each of which the target saw (a listener counting its connections and an
// HTTP server counting requests per path are the ground truth), the same scheduler counters, the same
// observations for the sinks, and check-now and shutdown as before. The probes run in dist/ (a worker
// thread cannot load TypeScript): vitest's pretest builds it.

const TCP_TARGETS = 12;
const HTTP_TARGETS = 6;
const INTERVAL_MS = 250;
const RUN_MS = 2600;

const listeners: Server[] = [];
const tcpCounts: number[] = [];
let http: HttpServer;
const httpCounts = new Map<string, number>();
let tcpCountsAtStart: number[] = [];

beforeAll(async () => {
  for (let i = 0; i < TCP_TARGETS; i++) {
    tcpCounts.push(0);
    const s = createServer((c) => {
      tcpCounts[i]!++;
      c.on('error', () => {});
      c.end();
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    listeners.push(s);
  }
  http = createHttpServer((req, res) => {
    httpCounts.set(req.url ?? '', (httpCounts.get(req.url ?? '') ?? 0) + 1);
    res.end('ok');
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
});

afterAll(async () => {
  for (const s of listeners) await new Promise((r) => s.close(r));
  await new Promise((r) => http.close(r));
});

function configText(workers: number | 'auto'): string {
  const lines = [
    `interval: ${INTERVAL_MS}ms`,
    'timeout: 200ms',
    'store: false',
    `probes: { workers: ${workers} }`,
    'targets:',
  ];
  listeners.forEach((s, i) =>
    lines.push(`  - { name: tcp-${i}, kind: tcp, target: "127.0.0.1:${(s.address() as AddressInfo).port}" }`),
  );
  const httpPort = (http.address() as AddressInfo).port;
  for (let i = 0; i < HTTP_TARGETS; i++)
    lines.push(`  - { name: http-${i}, kind: http, target: "http://127.0.0.1:${httpPort}/t/${i}" }`);
  return lines.join('\n');
}

interface Counts {
  observed: Map<string, number>;
  started: Map<string, number>;
  skipped: Map<string, number>;
  metric: Map<string, number>;
  seen: Map<string, number>;
  ok: number;
  shapes: Set<string>;
  /** From agent.start() to the first run observed, ms: how long the threads took to start. */
  firstRunMs: number;
}

const inc = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

/** Runs an agent for RUN_MS and returns its counts per target and the targets' own counts in that time. */
async function runAgent(workers: number): Promise<Counts> {
  const before = { tcp: [...tcpCounts], http: new Map(httpCounts) };
  const c: Counts = {
    observed: new Map(),
    started: new Map(),
    skipped: new Map(),
    metric: new Map(),
    seen: new Map(),
    ok: 0,
    shapes: new Set(),
    firstRunMs: NaN,
  };
  let startedAt = 0;
  const agent = new Agent(parseConfig(configText(workers)), {
    processMetrics: false,
    onObservation: (o: Observation) => {
      if (Number.isNaN(c.firstRunMs)) c.firstRunMs = performance.now() - startedAt;
      inc(c.observed, o.name);
      if (o.result.ok) c.ok++;
      // The shape sinks see: every field and its type, phases included.
      c.shapes.add(
        `${o.kind}:${Object.keys(o).sort().join(',')}|${Object.entries(o.result)
          .map(([k, v]) => `${k}:${typeof v}`)
          .sort()
          .join(',')}|${Object.keys(o.result.phases).sort().join(',')}`,
      );
    },
    scheduler: {
      lateness: (id) => inc(c.started, id),
      skipped: (id) => inc(c.skipped, id),
    },
  });
  startedAt = performance.now();
  agent.start();
  await sleep(RUN_MS);
  await agent.close();
  // After the close: a worker's last batch arrives during it.
  const text = await agent.registry.metrics();
  for (const m of text.matchAll(/^coalmine_probes_total\{[^}]*target="([^"]+)"[^}]*\} (\d+)$/gm))
    c.metric.set(m[1]!, (c.metric.get(m[1]!) ?? 0) + Number(m[2]));
  listeners.forEach((_, i) => c.seen.set(`tcp-${i}`, tcpCounts[i]! - before.tcp[i]!));
  for (let i = 0; i < HTTP_TARGETS; i++)
    c.seen.set(`http-${i}`, (httpCounts.get(`/t/${i}`) ?? 0) - (before.http.get(`/t/${i}`) ?? 0));
  return c;
}

const names = [
  ...Array.from({ length: TCP_TARGETS }, (_, i) => `tcp-${i}`),
  ...Array.from({ length: HTTP_TARGETS }, (_, i) => `http-${i}`),
];

describe('probe workers', () => {
  it('report the same runs per target as the main thread, each of which the target saw', async () => {
    const inProcess = await runAgent(0);
    const inWorkers = await runAgent(2);
    for (const c of [inProcess, inWorkers]) {
      const total = [...c.observed.values()].reduce((a, b) => a + b, 0);
      expect(c.ok).toBe(total);
      for (const name of names) {
        const observed = c.observed.get(name) ?? 0;
        const started = c.started.get(name) ?? 0;
        const skipped = c.skipped.get(name) ?? 0;
        // About RUN_MS / INTERVAL_MS slots each (the first falls at a hashed offset in the interval),
        // every one run or counted skipped.
        expect(started + skipped).toBeGreaterThanOrEqual(Math.floor(RUN_MS / INTERVAL_MS) - 1);
        expect(observed).toBeGreaterThan(0);
        // What the sinks saw is what the metrics count; every started run was observed, but one that
        // was in flight when the agent closed (in both modes, its result is not kept).
        expect(c.metric.get(name)).toBe(observed);
        expect(started - observed).toBeGreaterThanOrEqual(0);
        expect(started - observed).toBeLessThanOrEqual(1);
        // The target saw each observed run, and at most the one in flight at the close besides.
        const seen = c.seen.get(name) ?? 0;
        expect(seen - observed).toBeGreaterThanOrEqual(0);
        expect(seen - observed).toBeLessThanOrEqual(1);
      }
    }
    // Nothing skipped on the main thread; with workers only the slots that fell due while the threads
    // started (they count from agent.start(), as the main thread's do): before the first run came back.
    for (const name of names) {
      expect(inProcess.skipped.get(name) ?? 0).toBe(0);
      expect(inWorkers.skipped.get(name) ?? 0).toBeLessThanOrEqual(
        Math.ceil(inWorkers.firstRunMs / INTERVAL_MS) + 1,
      );
    }
    // The same slots (the offsets hash the names, from the same start) over the same time: the same
    // runs-or-skips per target, give or take the one at the close.
    for (const name of names) {
      const slots = (c: Counts) => (c.started.get(name) ?? 0) + (c.skipped.get(name) ?? 0);
      expect(Math.abs(slots(inWorkers) - slots(inProcess))).toBeLessThanOrEqual(1);
    }
    expect([...inWorkers.shapes].sort()).toEqual([...inProcess.shapes].sort());
  });

  it('check-now runs a worker-owned target and returns its fresh result', async () => {
    const agent = new Agent(
      parseConfig(
        configText(2)
          .replace(`interval: ${INTERVAL_MS}ms`, 'interval: 60s')
          .replace('timeout: 200ms', 'timeout: 2s'),
      ),
      { processMetrics: false },
    );
    agent.start();
    try {
      const before = tcpCounts[3]!;
      const t0 = Date.now();
      const [o] = await agent.check(['tcp-3']);
      expect(o).toMatchObject({ name: 'tcp-3', kind: 'tcp', result: { ok: true } });
      expect(o!.startedAtMs).toBeGreaterThanOrEqual(t0 - 1);
      expect(tcpCounts[3]! - before).toBeGreaterThanOrEqual(1);
      expect(agent.latest().find((l) => l.name === 'tcp-3')).toBe(o);
      const all = await agent.check();
      expect(all.map((a) => a.name).sort()).toEqual([...names].sort());
      expect(all.every((a) => a.result.ok)).toBe(true);
    } finally {
      await agent.close();
    }
  });

  it('shut down promptly, keeping the results measured before the close', async () => {
    const observed: Observation[] = [];
    tcpCountsAtStart = [...tcpCounts];
    const agent = new Agent(parseConfig(configText(2)), {
      processMetrics: false,
      onObservation: (o) => observed.push(o),
    });
    agent.start();
    await sleep(1200);
    const before = [...tcpCounts];
    const count0 = observed.length;
    const t0 = performance.now();
    await agent.close();
    const closeMs = performance.now() - t0;
    // Not the 2 s grace: each worker answered the stop with its last batch.
    expect(closeMs).toBeLessThan(1500);
    const count = observed.length;
    await sleep(300);
    expect(observed.length).toBe(count);
    expect(count).toBeGreaterThan(count0 - 1);
    // Every connection a target had seen when the close began was a run whose result reached the
    // observer by the time close() resolved, but the one that may have been in flight.
    listeners.forEach((_, i) => {
      const runs = observed.filter((o) => o.name === `tcp-${i}`).length;
      const seenAtClose = before[i]! - (tcpCountsAtStart[i] ?? 0);
      expect(runs).toBeGreaterThanOrEqual(seenAtClose - 1);
    });
  });
});
