import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nsToSeconds, systemClock } from '../../core/clock.js';
import type { ProbeResult } from '../../core/types.js';
import { probes, type ProbeKind } from '../../probes/registry.js';
import { runProbe } from '../../probes/run.js';
import { startBlackboxExporter, type BlackboxExporter } from '../../../test/support/blackbox.js';
import { freePort } from '../../../test/support/net.js';
import { haveCommand } from '../../../test/support/require.js';
import { ProbeMetrics } from './probe-metrics.js';

const ROUNDS = 7;

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** Seconds from connect() to 'connect' (or 'error') as a plain Node client sees it: a wall-time baseline. */
function wallConnect(port: number): Promise<number> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const s = connect({ host: '127.0.0.1', port, noDelay: true });
    const done = () => {
      resolve(nsToSeconds(process.hrtime.bigint() - t0));
      s.destroy();
    };
    s.once('connect', done);
    s.once('error', done);
  });
}

/** What the registry exports as probe_duration_seconds for `name`. */
async function exported(registry: Registry, metric: string, name: string): Promise<number> {
  const text = await registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${metric}{`) && l.includes(`target="${name}"`));
  expect(line, `${metric} for ${name}`).toBeDefined();
  return Number(line!.split(' ').pop());
}

const phaseSum = (r: ProbeResult) => Object.values(r.phases).reduce<bigint>((a, b) => a + (b ?? 0n), 0n);

describe('probe_duration_seconds is wall time, as blackbox_exporter means it', () => {
  const sockets = new Set<Socket>();
  const tcpServer = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const httpServer = createHttpServer((_, res) => res.end('ok'));
  let tcpPort: number, httpPort: number, closedPort: number;

  beforeAll(async () => {
    [tcpPort, httpPort, closedPort] = await Promise.all([listen(tcpServer), listen(httpServer), freePort()]);
  });
  afterAll(() => {
    for (const s of sockets) s.destroy();
    tcpServer.close();
    httpServer.close();
  });

  /** Runs the real probe ROUNDS times, interleaved with the baseline; medians of both and of the export. */
  async function measure(kind: ProbeKind, target: string, baselinePort: number) {
    const registry = new Registry();
    const metrics = new ProbeMetrics(registry, { buckets: [0.001, 0.01, 0.1, 1], compat: ['latency404'] });
    const opts = probes[kind].options.parse({}) as Record<string, unknown>;
    const ours: number[] = [];
    const sums: number[] = [];
    const base: number[] = [];
    let last: ProbeResult | undefined;
    for (let i = 0; i < ROUNDS; i++) {
      base.push(await wallConnect(baselinePort));
      const startedAtMs = Date.now();
      last = await runProbe(kind, target, opts, { clock: systemClock, timeoutMs: 2000 });
      metrics.observe({ name: 't', kind, target, startedAtMs, result: last });
      const exportedSeconds = await exported(registry, 'probe_duration_seconds', 't');
      // The wall time includes every phase and our own time between them: strictly more than their sum.
      expect(exportedSeconds).toBeGreaterThan(nsToSeconds(phaseSum(last)));
      ours.push(exportedSeconds);
      sums.push(nsToSeconds(phaseSum(last)));
    }
    return { ours: median(ours), sum: median(sums), base: median(base), last: last! };
  }

  it('a successful TCP connect: more than the phases, near a client-timed connect', async () => {
    const m = await measure('tcp', `127.0.0.1:${tcpPort}`, tcpPort);
    expect(m.last.ok).toBe(true);
    // A sane factor either way of what a plain client takes for the same connect in this run.
    expect(m.ours).toBeGreaterThan(m.base / 5);
    expect(m.ours).toBeLessThan(m.base * 50);
    // The kernel-timed network time is kept, under our own name.
    expect(m.last.networkNs).toBe(phaseSum(m.last));
    console.info(`tcp: ours ${m.ours * 1e6} us wall, ${m.sum * 1e6} us phases, client ${m.base * 1e6} us`);
  });

  it('a refused TCP connect is wall time too, comparable with a successful one', async () => {
    const m = await measure('tcp', `127.0.0.1:${closedPort}`, closedPort);
    expect(m.last.ok).toBe(false);
    expect(m.ours).toBeGreaterThan(m.base / 5);
    expect(m.ours).toBeLessThan(m.base * 50);
    expect(m.last.networkNs).toBeUndefined();
  });

  it('a successful HTTP GET: more than its phases, and seed 001 names carry the same wall time', async () => {
    const registry = new Registry();
    const metrics = new ProbeMetrics(registry, { buckets: [1], compat: ['latency404'], targetBuckets: true });
    const opts = probes.http.options.parse({}) as Record<string, unknown>;
    const t0 = process.hrtime.bigint();
    const result = await runProbe('http', `http://127.0.0.1:${httpPort}/`, opts, {
      clock: systemClock,
      timeoutMs: 2000,
    });
    const outside = nsToSeconds(process.hrtime.bigint() - t0);
    expect(result.ok).toBe(true);
    metrics.observe({ name: 'h', kind: 'http', target: 'x', startedAtMs: Date.now(), result });
    const wall = await exported(registry, 'probe_duration_seconds', 'h');
    expect(wall).toBeGreaterThan(nsToSeconds(phaseSum(result)));
    expect(wall).toBeLessThanOrEqual(outside);
    expect(await exported(registry, 'http_response_time_seconds_sum', 'h')).toBe(wall);
    expect(await exported(registry, 'coalmine_probe_network_seconds_sum', 'h')).toBeCloseTo(
      nsToSeconds(phaseSum(result)),
      9,
    );
  });

  describe('against blackbox_exporter in the same run', () => {
    let exporter: BlackboxExporter | undefined;
    const have = haveCommand('prometheus-blackbox-exporter', 'apt-get install prometheus-blackbox-exporter');

    beforeAll(async () => {
      if (!have) return;
      exporter = await startBlackboxExporter('modules:\n  tcp_connect:\n    prober: tcp\n    timeout: 2s\n');
    });
    afterAll(() => {
      exporter?.close();
    });

    it.skipIf(!have)("our probe_duration_seconds is of the order of blackbox_exporter's", async () => {
      const theirs: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const text = await exporter!.probe('tcp_connect', `127.0.0.1:${tcpPort}`);
        expect(text).toMatch(/^probe_success 1$/m);
        theirs.push(Number(/^probe_duration_seconds (\S+)$/m.exec(text)![1]));
      }
      const m = await measure('tcp', `127.0.0.1:${tcpPort}`, tcpPort);
      const ratio = m.ours / median(theirs);
      console.info(
        `tcp_connect: ours ${(m.ours * 1e6).toFixed(0)} us, blackbox ${(median(theirs) * 1e6).toFixed(0)} us (ratio ${ratio.toFixed(2)}); network ${(m.sum * 1e6).toFixed(0)} us`,
      );
      expect(ratio).toBeGreaterThan(0.1);
      expect(ratio).toBeLessThan(10);
    });
  });
});
