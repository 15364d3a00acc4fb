import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { until } from '../../test/support/async.js';
import { MessagingMetrics } from '../sinks/prometheus/messaging-metrics.js';
import { DeliveryQueue, wallClockNs } from '../transports/base.js';
import type { Delivery } from '../transports/transport.js';
import { MemoryTransport } from '../transports/memory/index.js';
import { coalminerChannel, DEFAULT_PREFIX } from './channels.js';
import { Coalminer } from './coalminer.js';
import { encodeBinary, type Envelope, type EnvelopeKey } from './envelope.js';
import { pingNow } from '../../test/support/envelopes.js';

let bus = 0;
const INTERVAL = 10_000_000n; // 100/s

/**
 * A canary played by the test: it confirms and pings by hand, so each test knows exactly what was sent,
 * and an attacker on the same channel publishes whatever it likes.
 */
async function setup(opts: { secret?: EnvelopeKey; register?: string[] } = {}) {
  const t = new MemoryTransport(`memory://coalminer-${++bus}`);
  await t.connect();
  const registry = new Registry();
  const metrics = new MessagingMetrics(registry, [0.01, 0.1, 1]);
  const m = new Coalminer({
    name: 'm',
    transport: t,
    register: opts.register ?? ['real'],
    observer: metrics.coalminerObserver('m', 'memory', 'r'),
    ...(opts.secret !== undefined ? { secret: opts.secret } : {}),
    sequence: { lossTimeoutMs: 60_000 },
  });
  metrics.watchCoalminer(m, 'memory', 'r');
  await m.start();
  const channel = coalminerChannel(DEFAULT_PREFIX, 'm');
  const runId = 0x1234_5678_9abc_def0n;
  const send = (fields: Partial<Envelope>, key?: EnvelopeKey) =>
    t.publish(
      channel,
      encodeBinary(pingNow({ canary: 'real', coalminer: 'm', runId, intervalNs: INTERVAL, ...fields }), key),
    );
  let next = 0n;
  /** The real canary: a confirm at seq 0, then `n` pings in order. */
  const real = {
    confirm: (key?: EnvelopeKey) => send({ type: 'confirm', seq: 0n }, key),
    ping: async (n: number, key?: EnvelopeKey) => {
      for (let i = 0; i < n; i++) await send({ seq: next++ }, key);
    },
    get sent() {
      return Number(next);
    },
  };
  const counts = () => m.flowCounts().find((f) => f.runId === runId.toString(16))?.counts;
  const close = async () => {
    await m.stop();
    await t.close();
  };
  return { t, m, registry, send, real, runId, counts, close, channel };
}

describe('a coalminer under forged traffic', () => {
  it('refuses a ping with a sequence number beyond 2^53 at once, and the flow goes on exactly', async () => {
    const s = await setup();
    await s.real.confirm();
    await s.real.ping(10);
    const before = Date.now();
    for (const seq of [2n ** 53n, 2n ** 53n + 1n, 2n ** 64n - 1n]) await s.send({ seq });
    await s.send({ seq: 2n ** 60n, runId: 99n });
    await until(() => s.m.foreign === 4, 'refused', 5000);
    expect(Date.now() - before).toBeLessThan(5000);
    expect(s.m.foreignByReason.implausible).toBe(3);
    expect(s.m.foreignByReason.unknown_run).toBe(1);
    await s.real.ping(10);
    await until(() => s.counts()?.received === 20, '20 received');
    expect(s.counts()).toMatchObject({ expected: 20, received: 20, lost: 0, inFlight: 0, duplicated: 0 });
    await s.close();
  });

  it('does not take a head jump its rate cannot explain: seq + 2^40 under the real run id', async () => {
    const s = await setup();
    await s.real.confirm();
    await s.real.ping(50);
    await s.send({ seq: 50n + 2n ** 40n });
    // A jump a little past what 100/s and the slack explain is refused too.
    await s.send({ seq: 50n + 2_000n });
    // And another rate under the same run, and failure news beyond the head.
    await s.send({ seq: 50n, intervalNs: 1n });
    await s.send({ type: 'notice', failed: [[2n ** 40n, 2n ** 41n]] });
    await until(() => s.m.foreignByReason.implausible === 4, 'refused');
    await s.real.ping(50);
    await until(() => s.counts()?.received === 100, '100 received');
    s.m.tick();
    expect(s.counts()).toMatchObject({
      expected: 100,
      received: 100,
      lost: 0,
      inFlight: 0,
      reordered: 0,
      sendFailed: 0,
      sendFailedArrived: 0,
    });
    await s.close();
  });

  it('keeps forged canary names and run ids out of flows, label values and counts', async () => {
    const s = await setup();
    await s.real.confirm();
    const metricsBefore = (await s.registry.metrics()).length;
    for (let i = 0; i < 5000; i++) {
      await s.send({ canary: `fake${i}`, seq: BigInt(i) });
      await s.send({ canary: `fake${i}`, type: 'confirm' });
      await s.send({ runId: BigInt(i + 1), seq: BigInt(i) });
      if (i % 10 === 0) await s.real.ping(1);
    }
    await until(() => s.m.foreign === 15_000, 'all handled');
    expect(s.m.foreignByReason).toMatchObject({ unknown_canary: 10_000, unknown_run: 5000 });
    expect(s.m.flowCount()).toBe(1);
    expect(s.m.canaries()).toEqual(['real']);
    expect(s.counts()).toMatchObject({ received: s.real.sent, expected: s.real.sent, lost: 0 });
    const text = await s.registry.metrics();
    expect(text).not.toContain('fake');
    // One label set per reason and the real canary's: a few kilobytes, whatever arrived.
    expect(text.length - metricsBefore).toBeLessThan(20_000);
    expect(text).toContain(
      'coalmine_messages_foreign_total{coalminer="m",transport="memory",reason="unknown_canary"} 10000',
    );
    await s.close();
  });

  it('never evicts a receiving flow for made-up runs, however many confirms arrive', async () => {
    const s = await setup();
    await s.real.confirm();
    await s.real.ping(5);
    for (let i = 0; i < 1500; i++) {
      await s.send({ type: 'confirm', runId: BigInt(1_000_000 + i) });
      if (i % 100 === 0) await s.real.ping(1);
    }
    await s.real.ping(5);
    await until(() => s.counts()?.received === s.real.sent, 'all received');
    expect(s.m.flowCount()).toBeLessThanOrEqual(4);
    expect(s.counts()).toMatchObject({ expected: s.real.sent, lost: 0, inFlight: 0 });
    await s.close();
  });

  it('takes a clock-sync reply only for a request of its own', async () => {
    const s = await setup();
    const now = wallClockNs();
    // A reply claiming the canary's clock is an hour ahead, to a request never made.
    await s.send({ type: 'clocksync-reply', seq: 12345n, stamps: [now, now + 3_600_000_000_000n, now] });
    await until(() => s.m.foreignByReason.unsolicited === 1, 'refused');
    expect(s.m.clockEstimate('real')).toBeUndefined();
    await s.close();
  });

  it('with a shared secret, takes only envelopes signed with it', async () => {
    const s = await setup({ secret: 'correct horse' });
    await s.real.confirm('correct horse');
    await s.real.ping(10, 'correct horse');
    await s.send({ seq: 10n }); // unsigned
    await s.send({ seq: 11n }, 'wrong secret');
    await s.send({ type: 'confirm', runId: 7n }); // an unsigned confirm makes no flow
    await until(() => s.m.foreign === 3, 'refused');
    expect(s.m.foreignByReason).toMatchObject({ unsigned: 2, bad_signature: 1 });
    await until(() => s.counts()?.received === 10, '10 received');
    expect(s.m.flowCount()).toBe(1);
    await s.close();
  });

  it('counts a message whose handling throws as foreign (error) and takes the next one', async () => {
    const t = new MemoryTransport(`memory://coalminer-${++bus}`);
    await t.connect();
    let calls = 0;
    const m = new Coalminer({
      name: 'm',
      transport: t,
      register: [],
      accept: ['real'],
      observer: {
        latency: () => {
          if (++calls === 1) throw new Error('a bug in an observer');
        },
      },
    });
    await m.start();
    for (const seq of [0n, 1n, 2n])
      await t.publish(
        coalminerChannel(DEFAULT_PREFIX, 'm'),
        encodeBinary(pingNow({ canary: 'real', coalminer: 'm', runId: 1n, seq, intervalNs: INTERVAL })),
      );
    await until(() => calls === 3, 'three handled');
    expect(m.foreignByReason.error).toBe(1);
    expect(m.flowCounts()[0]!.counts.received).toBe(3);
    await m.stop();
    await t.close();
  });
});

describe("a coalminer's own drops", () => {
  it('counts pings its full buffer dropped as dropped locally, never as lost', async () => {
    const t = new MemoryTransport(`memory://coalminer-${++bus}`);
    await t.connect();
    // A subscription buffer of 10 that the test fills in one go, faster than anyone could read it.
    const queue = new DeliveryQueue<Delivery>(10);
    const transport = new Proxy(t, {
      get(target, prop, receiver) {
        if (prop === 'subscribe') return () => queue;
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const dropped: string[] = [];
    const m = new Coalminer({
      name: 'm',
      transport,
      register: ['real'],
      sequence: { lossTimeoutMs: 50 },
      observer: { droppedLocally: (c, n) => dropped.push(...Array<string>(n).fill(c)) },
    });
    await m.start();
    const push = (fields: Partial<Envelope>) =>
      queue.push({
        payload: encodeBinary(
          pingNow({ canary: 'real', coalminer: 'm', runId: 5n, intervalNs: INTERVAL, ...fields }),
        ),
        receivedNs: wallClockNs(),
      });
    push({ type: 'confirm', seq: 0n });
    await until(() => m.isConfirmedBy('real'), 'confirmed');
    // 50 pings at once into a buffer of 10: the 40 oldest are dropped here, the last 10 are read.
    for (let seq = 0n; seq < 50n; seq++) push({ seq });
    push({ seq: 50n, type: 'ping' });
    await until(() => (m.flowCounts()[0]?.counts.received ?? 0) >= 10, 'the last ten read');
    await new Promise((r) => setTimeout(r, 100));
    m.tick();
    const c = m.flowCounts()[0]!.counts;
    expect(queue.dropped).toBe(41);
    expect(c).toMatchObject({ expected: 51, received: 10, droppedLocally: 41, lost: 0, inFlight: 0 });
    expect(dropped).toHaveLength(41);
    expect(m.droppedLocally).toBe(41);
    await m.stop();
    await t.close();
  });
});
