import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Canary } from '../../src/messaging/canary.js';
import { Coalminer } from '../../src/messaging/coalminer.js';
import { create } from '../../src/transports/redis/index.js';
import type { Transport } from '../../src/transports/transport.js';
import { until } from '../support/async.js';
import { haveCommand } from '../support/require.js';
import { REDIS, redisReachable } from '../support/services.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const redisUp = await redisReachable();
const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const hasFaketime = haveCommand('faketime', 'apt-get install faketime') && existsSync(FAKETIME_LIB);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

describe.skipIf(!redisUp)('measurements against ground truth we control, through real Redis', () => {
  const opened: Transport[] = [];
  const open = async (url: string) => {
    const t = create(url, {});
    opened.push(t);
    await t.connect(AbortSignal.timeout(10_000));
    return t;
  };
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await startTcpProxy(REDIS);
  });
  afterAll(async () => {
    await Promise.all(opened.map((t) => t.close()));
    await proxy.close();
  });

  it('reports a median 20 ms higher, within 1 ms, when a proxy adds 20 ms on the way to the coalminer', async () => {
    const samples: { at: number; s: number }[] = [];
    const channel = `gt${process.pid}`;
    const canary = new Canary({
      name: 'delay-canary',
      prefix: channel,
      transport: await open('redis://127.0.0.1:6379'),
      ratePerSecond: 200,
    });
    const coalminer = new Coalminer({
      name: 'delayed',
      prefix: channel,
      transport: await open(`redis://127.0.0.1:${proxy.port}`),
      register: ['delay-canary'],
      observer: { latency: (_c, fromIntended) => samples.push({ at: performance.now(), s: fromIntended }) },
    });
    await canary.start();
    await coalminer.start();
    await until(() => coalminer.isConfirmedBy('delay-canary'), 'registration', 10_000, 20);
    await sleep(500);
    const a0 = performance.now();
    await sleep(2000);
    const a1 = performance.now();
    proxy.delayMs.toClient = 20;
    await sleep(500);
    const b0 = performance.now();
    await sleep(2000);
    const b1 = performance.now();
    proxy.delayMs.toClient = 0;
    await canary.stop();
    await coalminer.stop();
    const before = median(samples.filter((x) => x.at >= a0 && x.at < a1).map((x) => x.s));
    const after = median(samples.filter((x) => x.at >= b0 && x.at < b1).map((x) => x.s));
    expect(samples.filter((x) => x.at >= b0 && x.at < b1).length).toBeGreaterThan(300);
    expect(Math.abs(after - before - 0.02)).toBeLessThan(0.001);
  });

  it.skipIf(!hasFaketime)(
    'corrects a canary whose clock runs 5 s ahead in another process, within the reported bound',
    async () => {
      const name = `skewed-${process.pid}`;
      const child = spawn(
        process.execPath,
        [
          join(import.meta.dirname, '../../bin/coalmine.js'),
          'canary',
          '--transport',
          'redis://127.0.0.1:6379',
          '--name',
          name,
          '--rate',
          '50',
          '--duration',
          '15s',
        ],
        {
          env: {
            ...process.env,
            LD_PRELOAD: FAKETIME_LIB,
            FAKETIME: '+5s',
            FAKETIME_DONT_FAKE_MONOTONIC: '1',
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      try {
        const latencies: number[] = [];
        const coalminer = new Coalminer({
          name: 'straight',
          transport: await open('redis://127.0.0.1:6379'),
          register: [name],
          clockSyncIntervalMs: 200,
          observer: { latency: (_c, fromIntended) => latencies.push(fromIntended) },
        });
        await coalminer.start();
        await until(() => (coalminer.clockEstimate(name)?.samples ?? 0) >= 10, 'clock samples', 12_000, 20);
        const est = coalminer.clockEstimate(name)!;
        // faketime shifts the child's wall clock by exactly 5 s; our estimate must land within its bound.
        expect(Math.abs(est.offsetNs - 5e9)).toBeLessThanOrEqual(est.errorNs);
        expect(est.errorNs).toBeLessThan(5e6);
        latencies.length = 0;
        await sleep(1000);
        await coalminer.stop();
        expect(
          latencies.length,
          JSON.stringify({ reports: coalminer.reports().map((r) => r.counts), stderr }),
        ).toBeGreaterThan(20);
        // Uncorrected, each would read about -5 s; corrected, they are small and positive.
        expect(median(latencies)).toBeGreaterThan(0);
        expect(median(latencies)).toBeLessThan(0.05);
      } finally {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      expect(stderr).not.toMatch(/unhandled/);
    },
  );
});
