import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { coalminerChannel } from '../../src/messaging/channels.js';
import { Canary } from '../../src/messaging/canary.js';
import { Coalminer } from '../../src/messaging/coalminer.js';
import { encode, type Envelope } from '../../src/messaging/envelope.js';
import { MessagingMetrics } from '../../src/sinks/prometheus/messaging-metrics.js';
import { create } from '../../src/transports/redis/index.js';
import type { Transport } from '../../src/transports/transport.js';
import { until } from '../support/async.js';
import { pingNow } from '../support/envelopes.js';
import { redisReachable } from '../support/services.js';

const redisUp = await redisReachable();

/**
 * An attacker on the same Redis as a real canary and coalminer publishes what the issue found breaks an
 * agent: a ping past 2^53, a head jump of 2^40 under the real run id, tens of thousands of made-up canary
 * names and run ids, and a flood of forged confirms. The real flow must stay exact, the coalminer
 * responsive, and its memory and /metrics bounded.
 */
describe.skipIf(!redisUp)('forged traffic through real Redis', () => {
  const opened: Transport[] = [];
  const open = async (client: string) => {
    const t = create('redis://127.0.0.1:6379', { clientName: client });
    opened.push(t);
    await t.connect(AbortSignal.timeout(10_000));
    return t;
  };
  afterAll(async () => {
    await Promise.all(opened.map((t) => t.close()));
  });

  it('keeps the real flow exact, the coalminer responsive and its memory and /metrics bounded', async () => {
    const prefix = `forged${process.pid}`;
    const registry = new Registry();
    const metrics = new MessagingMetrics(registry, [0.001, 0.01, 0.1, 1]);
    const canary = new Canary({ name: 'real', prefix, transport: await open('canary'), ratePerSecond: 200 });
    const coalminer = new Coalminer({
      name: 'eu',
      prefix,
      transport: await open('coalminer'),
      register: ['real'],
      observer: metrics.coalminerObserver('eu', 'redis', 'eu'),
      sequence: { lossTimeoutMs: 2000 },
    });
    metrics.watchCoalminer(coalminer, 'redis', 'eu');
    const attacker = await open('attacker');
    await canary.start();
    await coalminer.start();
    await until(() => coalminer.isConfirmedBy('real'), 'registration', 10_000, 20);
    await sleep(500);
    const flow = () => coalminer.flowCounts().find((f) => f.canary === 'real')!;
    const runId = BigInt(`0x${flow().runId}`);
    const baselineMetrics = (await registry.metrics()).length;
    const heapBefore = process.memoryUsage().heapUsed;

    const channel = coalminerChannel(prefix, 'eu');
    const forge = (fields: Partial<Envelope>) =>
      attacker.publish(
        channel,
        encode(pingNow({ canary: 'real', coalminer: 'eu', runId, intervalNs: 5_000_000n, ...fields }), false),
      );
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const head = () => BigInt(flow().counts.expected);
    await forge({ seq: 2n ** 53n });
    await forge({ seq: 2n ** 64n - 1n, runId: 42n });
    await forge({ seq: head() + 2n ** 40n });
    await forge({ type: 'clocksync-reply', seq: 7n, stamps: [1n, 2n, 3n] });
    const N = 20_000;
    for (let i = 0; i < N; i += 500) {
      const batch: Promise<unknown>[] = [];
      for (let j = i; j < i + 500; j++) {
        batch.push(forge({ canary: `fake-${j}`, seq: BigInt(j) }));
        if (j % 10 === 0) batch.push(forge({ runId: BigInt(j + 1000), seq: BigInt(j) }));
        if (j % 13 === 0) batch.push(forge({ type: 'confirm', runId: BigInt(j + 10_000_000) }));
        if (j % 7 === 0) batch.push(attacker.publish(channel, new TextEncoder().encode(`garbage ${j}`)));
      }
      await Promise.all(batch);
    }
    // Every forged message but the confirms (which make runs of their own) is foreign.
    const foreign = 4 + N + N / 10 + Math.ceil(N / 7);
    await until(() => coalminer.foreign >= foreign, 'every forged message handled', 30_000, 20);
    delay.disable();
    await canary.stop();
    await sleep(2500);
    coalminer.tick();
    const sent = canary.stats().get('eu')!;
    const got = flow().counts;
    const detail = JSON.stringify({ sent, got, foreign: coalminer.foreignByReason });
    // The real flow, exactly: every attempted ping in one state, none lost, none counted twice.
    expect(got.expected, detail).toBe(sent.attempted);
    expect(got.received, detail).toBe(sent.sent);
    expect(got, detail).toMatchObject({ lost: 0, inFlight: 0, duplicated: 0, late: 0, sendFailedArrived: 0 });
    expect(coalminer.foreignByReason, detail).toMatchObject({
      implausible: 2,
      unknown_run: 1 + N / 10,
      unsolicited: 1,
      unknown_canary: N,
      undecodable: Math.ceil(N / 7),
    });
    // Forged confirms make at most a few runs, each refused pings of its own or evicted; the real one stays.
    expect(coalminer.flowCount()).toBeLessThanOrEqual(4);
    expect(coalminer.canaries()).toEqual(['real']);
    expect(coalminer.clockEstimate('real')?.samples ?? 0).toBeGreaterThan(0);
    // Responsive throughout: no turn of the event loop near the 100 ms a health check allows.
    expect(delay.max / 1e6, 'event-loop delay max, ms').toBeLessThan(1000);
    // Bounded: /metrics holds no forged name, and grows by a few label sets at most.
    const text = await registry.metrics();
    expect(text).not.toContain('fake-');
    expect(text.length - baselineMetrics).toBeLessThan(20_000);
    const heapGrowth = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    expect(heapGrowth, 'heap growth, MiB').toBeLessThan(100);
    await coalminer.stop();
  }, 120_000);
});
