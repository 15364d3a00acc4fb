import { randomBytes } from 'node:crypto';
import * as amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create } from '../../src/transports/amqp/index.js';
import { TransportError, type Transport, type TransportStatus } from '../../src/transports/transport.js';
import { nextWithin, sleep } from '../support/async.js';
import {
  channelName,
  expectNotConnected,
  fastReconnect as fast,
  nextText,
  recordStatus,
  text,
} from '../support/transports.js';
import { waitFor } from '../support/net.js';
import { serviceReachable } from '../support/services.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { transportConformance } from '../support/transport-conformance.js';

const HOST = '127.0.0.1';
const PORT = 5672;
const reachable = await serviceReachable(
  HOST,
  PORT,
  'start RabbitMQ with guest/guest on 127.0.0.1:5672 (e.g. `docker run -p 5672:5672 rabbitmq:3`)',
);
const URL = `amqp://guest:guest@${HOST}:${PORT}/`;

/** Out-of-band broker access for what a test does behind the transport's back. */
async function withAdmin<T>(fn: (ch: amqp.Channel) => Promise<T>): Promise<T> {
  const conn = await amqp.connect(URL);
  try {
    return await fn(await conn.createChannel());
  } finally {
    await conn.close();
  }
}

describe.skipIf(!reachable)('amqp against RabbitMQ', () => {
  // A subscription is 3 round trips (channel, queue, bind + consume); leave room on a loaded machine.
  transportConformance('amqp', { make: () => create(URL), acks: true, settleMs: 300 });

  describe('publisher confirms', () => {
    let t: Transport;
    beforeAll(async () => {
      t = create(URL);
      await t.connect(AbortSignal.timeout(10_000));
    });
    afterAll(() => t.close());

    it('stamps ackNs when the broker confirmed, between sending and resolving', async () => {
      const before = BigInt(Date.now()) * 1_000_000n;
      const receipt = await t.publish(channelName(), text('cm1 confirm'));
      const after = BigInt(Date.now() + 1) * 1_000_000n;
      expect(receipt.ackNs).toBeGreaterThanOrEqual(before - 2_000_000n);
      expect(receipt.ackNs).toBeLessThanOrEqual(after);
    });

    it('publishes without error before anyone subscribed (unroutable is not a send error)', async () => {
      await expect(
        t.publish(`coalmine.nobody.${randomBytes(4).toString('hex')}`, text('cm1 x')),
      ).resolves.toHaveProperty('ackNs');
    });

    it('resolves without ackNs when confirm=false', async () => {
      const c = create(`${URL}?confirm=false`);
      try {
        await c.connect(AbortSignal.timeout(10_000));
        const ch = channelName();
        const ac = new AbortController();
        const iter = c.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
        await sleep(300);
        const receipt = await c.publish(ch, text('cm1 unconfirmed'));
        expect(receipt.ackNs).toBeUndefined();
        expect((await nextWithin(iter, 5000)) && 'delivered').toBe('delivered');
        ac.abort();
      } finally {
        await c.close();
      }
    });
  });

  it('rejects connect() with a TransportError naming the URL and what to check', async () => {
    const t = create('amqp://guest:wrong-password@127.0.0.1:5672/');
    const err = await t.connect(AbortSignal.timeout(10_000)).catch((e: unknown) => e);
    expectNotConnected(err, 'amqp://guest:***@127.0.0.1:5672/');
    expect((err as Error).message).toMatch(/ACCESS.REFUSED/);
    expect((err as Error).message).not.toContain('wrong-password');
    await t.close();
  });

  it('rejects bad URL options when created', () => {
    expect(() => create(`${URL}?prefetch=lots`)).toThrow(/prefetch/);
    expect(() => create(`${URL}?exchnage=x`)).toThrow(/unknown option exchnage/);
  });

  it('recovers from a channel error: the exchange deleted under it is re-declared and re-bound', async () => {
    const exchange = `coalmine.test.x.${randomBytes(4).toString('hex')}`;
    const t = create(`${URL}?exchange=${exchange}`, fast);
    try {
      await t.connect(AbortSignal.timeout(10_000));
      const ch = channelName();
      const ac = new AbortController();
      const iter = t.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      await sleep(300);
      await t.publish(ch, text('cm1 before'));
      expect(await nextText(iter, 5000)).toBe('cm1 before');

      await withAdmin((admin) => admin.deleteExchange(exchange));
      // The broker closes the publish channel with 404 NOT_FOUND: that publish is refused, not hung.
      const err = await t.publish(ch, text('cm1 lost')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransportError);
      expect((err as TransportError).code).toBe('rejected');
      expect((err as Error).message).toMatch(/NOT_FOUND/);

      const receipt = await waitFor('publishing to work again', async () =>
        t.publish(ch, text('cm1 after')).catch(() => undefined),
      );
      expect(receipt.ackNs).toBeDefined();
      expect(await nextText(iter, 5000)).toBe('cm1 after');
      expect(t.state).toBe('connected');
      ac.abort();
    } finally {
      await t.close();
      await withAdmin((admin) => admin.deleteExchange(exchange));
    }
  });

  it('keeps messages for a durable named queue while its consumer is away', async () => {
    const exchange = `coalmine.test.durable.${randomBytes(4).toString('hex')}`;
    const clientName = `test-${randomBytes(4).toString('hex')}`;
    const ch = channelName();
    const consumer = create(`${URL}?exchange=${exchange}&durable=true`, { clientName });
    const producer = create(`${URL}?exchange=${exchange}&durable=true`);
    try {
      await Promise.all([
        consumer.connect(AbortSignal.timeout(10_000)),
        producer.connect(AbortSignal.timeout(10_000)),
      ]);
      const first = new AbortController();
      const iter1 = consumer.subscribe(ch, first.signal)[Symbol.asyncIterator]();
      await sleep(200);
      await producer.publish(ch, text('cm1 0'));
      expect(await nextText(iter1, 5000)).toBe('cm1 0');
      first.abort(); // consumer away; its queue stays
      await sleep(200);
      for (let i = 1; i <= 5; i++) await producer.publish(ch, text(`cm1 ${i}`));
      const iter2 = consumer.subscribe(ch, new AbortController().signal)[Symbol.asyncIterator]();
      const got: (string | undefined)[] = [];
      for (let i = 0; i < 5; i++) got.push(await nextText(iter2, 5000));
      expect(got).toEqual(['cm1 1', 'cm1 2', 'cm1 3', 'cm1 4', 'cm1 5']);
    } finally {
      await Promise.all([consumer.close(), producer.close()]);
      await withAdmin(async (admin) => {
        await admin.deleteQueue(`coalmine.${clientName}.${ch}`);
        await admin.deleteExchange(exchange);
      });
    }
  });

  describe('through a TCP proxy (outage, stall)', () => {
    let proxy: TcpProxy;
    let t: Transport;
    let direct: Transport;
    let seen: TransportStatus[];

    beforeAll(async () => {
      proxy = await startTcpProxy({ host: HOST, port: PORT });
      t = create(`amqp://guest:guest@127.0.0.1:${proxy.port}/`); // default backoff, as deployed
      seen = recordStatus(t);
      direct = create(URL);
      await Promise.all([
        t.connect(AbortSignal.timeout(10_000)),
        direct.connect(AbortSignal.timeout(10_000)),
      ]);
    });
    afterAll(async () => {
      await Promise.all([t?.close(), direct?.close()]);
      await proxy?.close();
    });

    it('fails publishes during an outage, reconnects within 5 s of the return and resubscribes', async () => {
      const ch = channelName();
      const ac = new AbortController();
      const iter = t.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      await sleep(300);
      await direct.publish(ch, text('cm1 before'));
      expect(await nextText(iter, 5000)).toBe('cm1 before');

      proxy.down();
      await waitFor('disconnect noticed', async () => (t.state !== 'connected' ? true : undefined), 5000);
      const started = Date.now();
      const err = await t.publish(ch, text('cm1 during')).catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(1000);
      expectNotConnected(err);
      const connectAgain = t.connect(AbortSignal.timeout(15_000));
      await sleep(1500); // several failed attempts against the dead proxy

      proxy.up();
      const upAt = Date.now();
      await waitFor('reconnected', async () => (t.state === 'connected' ? true : undefined), 5000);
      await connectAgain; // a connect() during the outage waits for the reconnect loop
      const reconnectMs = Date.now() - upAt;
      console.log(`amqp: reconnected ${reconnectMs} ms after the broker came back`);
      expect(reconnectMs).toBeLessThan(5000);

      await direct.publish(ch, text('cm1 after'));
      expect(await nextText(iter, 5000)).toBe('cm1 after');
      ac.abort();

      const types = seen.map((s) => s.type);
      const from = types.indexOf('connected');
      const rest = types.slice(from + 1);
      expect(rest[0]).toBe('disconnected');
      expect(rest).toContain('reconnecting');
      expect(rest.at(-1)).toBe('connected');
      const retry = seen.find((s) => s.type === 'reconnecting');
      expect(retry).toMatchObject({ type: 'reconnecting', attempt: 1 });
    });

    it('rejects a publish to a stalled broker with timeout, not a hang', async () => {
      proxy.delayMs.toClient = 1000; // confirms come back too late
      try {
        const started = Date.now();
        const err = await t
          .publish(channelName(), text('cm1 stalled'), { timeoutMs: 300 })
          .catch((e: unknown) => e);
        const took = Date.now() - started;
        expect(err).toBeInstanceOf(TransportError);
        expect((err as TransportError).code).toBe('timeout');
        expect(took).toBeGreaterThanOrEqual(290);
        expect(took).toBeLessThan(1000);
      } finally {
        await sleep(1100); // let the held chunks through first, so frames stay in order
        proxy.delayMs.toClient = 0;
      }
    });
  });

  it('close() during reconnecting stops retrying and ends subscriptions', async () => {
    const proxy = await startTcpProxy({ host: HOST, port: PORT });
    const t = create(`amqp://guest:guest@127.0.0.1:${proxy.port}/`, fast);
    try {
      await t.connect(AbortSignal.timeout(10_000));
      const iter = t.subscribe(channelName(), new AbortController().signal)[Symbol.asyncIterator]();
      proxy.down();
      await waitFor('reconnecting', async () => (t.state === 'reconnecting' ? true : undefined), 5000);
      const pending = iter.next();
      await t.close();
      await expect(pending).resolves.toMatchObject({ done: true });
      expect(t.state).toBe('closed');
      const accepted = proxy.accepted;
      proxy.up();
      await sleep(700);
      expect(proxy.accepted).toBe(accepted);
    } finally {
      await t.close();
      await proxy.close();
    }
  });
});
