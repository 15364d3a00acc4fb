import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { create, startRelay, type Relay } from '../../src/transports/websocket/index.js';
import { TransportError } from '../../src/transports/transport.js';
import { nextWithin, sleep, until } from '../support/async.js';
import {
  expectNotConnected,
  fastReconnect as fast,
  nextText,
  recordStatus,
  text,
} from '../support/transports.js';
import { freePort } from '../support/net.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { transportConformance } from '../support/transport-conformance.js';

// The relay is ours, started in-process: there is no external service to require.
let relay: Relay;
beforeAll(async () => {
  relay = await startRelay({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await relay?.close();
});

transportConformance('websocket', {
  make: () => create(relay.url),
  acks: true,
  settleMs: 50,
  maxPayload: 256 * 1024,
});

describe('websocket: specific behaviour', () => {
  const owned: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const o of owned.reverse()) await o.close();
  });
  const make = (url: string, opts = fast) => {
    const t = create(url, opts);
    owned.push(t);
    return t;
  };

  it('reconnects to a relay restarted on the same port, re-subscribes, and is back within 5 s', async () => {
    let r = await startRelay({ host: '127.0.0.1', port: 0, hopId: 'first' });
    const port = r.port;
    const sub = make(r.url);
    const pub = make(r.url);
    await Promise.all([sub.connect(), pub.connect()]);
    const statuses = recordStatus(sub);
    const ac = new AbortController();
    const iter = sub.subscribe('coalmine.restart', ac.signal)[Symbol.asyncIterator]();
    await sleep(50);
    await pub.publish('coalmine.restart', text('before'));
    expect(await nextText(iter, 2000)).toBe('before');

    await r.close();
    await until(() => pub.state !== 'connected' && sub.state !== 'connected', 'both to notice the outage');
    const during = await pub.publish('coalmine.restart', text('during')).catch((e: unknown) => e);
    expectNotConnected(during);
    await sleep(300); // a few failed attempts

    r = await startRelay({ host: '127.0.0.1', port, hopId: 'second' });
    owned.push(r);
    const back = Date.now();
    await until(() => sub.state === 'connected' && pub.state === 'connected', 'reconnect', 5000);
    const reconnectMs = Date.now() - back;
    console.log(`websocket: reconnected ${reconnectMs} ms after the relay came back`);
    expect(reconnectMs).toBeLessThan(5000);
    const types = statuses.map((s) => s.type);
    expect(types.slice(types.indexOf('disconnected'))).toEqual(
      expect.arrayContaining(['disconnected', 'reconnecting', 'connected']),
    );
    expect(types.lastIndexOf('connected')).toBeGreaterThan(types.indexOf('reconnecting'));
    expect(statuses.find((s) => s.type === 'reconnecting')).toMatchObject({
      attempt: 1,
      delayMs: expect.any(Number),
    });

    // The subscription made before the outage works again: the client re-subscribed on the new relay.
    await until(() => r.stats().subscriptions === 1, 're-subscription');
    await pub.publish('coalmine.restart', text('after'));
    expect(await nextText(iter, 2000)).toBe('after');
    ac.abort();
  });

  it('stamps deliveries with the relay receive time and receipts with the ack arrival time', async () => {
    const t = make(relay.url);
    await t.connect();
    const ac = new AbortController();
    const iter = t.subscribe('coalmine.stamps', ac.signal)[Symbol.asyncIterator]();
    await until(() => relay.stats().channels > 0, 'subscription');
    const sentNs = BigInt(Date.now()) * 1_000_000n;
    const receipt = await t.publish('coalmine.stamps', text('cm1 stamp'));
    const d = await nextWithin(iter, 2000);
    ac.abort();
    expect(d?.brokerNs).toBeDefined();
    expect(d!.brokerNs!).toBeGreaterThanOrEqual(sentNs - 2_000_000n);
    expect(d!.brokerNs!).toBeLessThanOrEqual(d!.receivedNs + 2_000_000n);
    expect(receipt.ackNs!).toBeGreaterThanOrEqual(d!.brokerNs! - 2_000_000n);
  });

  it('fails connect() with not_connected naming the URL when nothing listens', async () => {
    const port = await freePort();
    const err = await make(`ws://127.0.0.1:${port}/`)
      .connect()
      .catch((e: unknown) => e);
    expectNotConnected(err, `ws://127.0.0.1:${port}/`, 'ECONNREFUSED');
  });

  it('fails connect() against a WebSocket server that is not a relay', async () => {
    const other = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    other.on('connection', (ws) => ws.send('welcome'));
    await new Promise((r) => other.once('listening', r));
    owned.push({ close: () => new Promise<void>((r) => other.close(() => r())) });
    const { port } = other.address() as AddressInfo;
    const err = await make(`ws://127.0.0.1:${port}/`)
      .connect()
      .catch((e: unknown) => e);
    expectNotConnected(err, 'not a coalmine relay');
    for (const c of other.clients) c.terminate();
  });

  it('times out a publish the relay does not ack in time', async () => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: relay.port });
    owned.push(proxy);
    const t = make(`ws://127.0.0.1:${proxy.port}/`);
    await t.connect();
    proxy.delayMs.toClient = 1000;
    const started = Date.now();
    const err = await t
      .publish('coalmine.slow', text('cm1 slow'), { timeoutMs: 200 })
      .catch((e: unknown) => e);
    expect((err as TransportError).code).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(900);
  });

  it('rejects a payload over the relay limit with too_large before sending it', async () => {
    const small = await startRelay({ host: '127.0.0.1', port: 0, maxPayload: 1024 });
    owned.push(small);
    const t = make(small.url);
    await t.connect();
    const err = await t.publish('coalmine.big', new Uint8Array(1025)).catch((e: unknown) => e);
    expect((err as TransportError).code).toBe('too_large');
    await expect(t.publish('coalmine.big', new Uint8Array(1024))).resolves.toHaveProperty('ackNs');
    expect(small.stats().oversized).toBe(0);
  });

  it('ends a subscription the relay refuses with a rejected error', async () => {
    const strict = await startRelay({ host: '127.0.0.1', port: 0, maxSubscriptionsPerClient: 1 });
    owned.push(strict);
    const t = make(strict.url);
    await t.connect();
    const ac = new AbortController();
    t.subscribe('coalmine.one', ac.signal);
    const refused = t.subscribe('coalmine.two', ac.signal)[Symbol.asyncIterator]();
    const err = await refused.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).code).toBe('rejected');
    ac.abort();
  });

  it('drops a connection whose heartbeats stop arriving, and reconnects', async () => {
    const quick = await startRelay({ host: '127.0.0.1', port: 0, heartbeatMs: 100 });
    owned.push(quick);
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: quick.port });
    owned.push(proxy);
    const t = make(`ws://127.0.0.1:${proxy.port}/`);
    await t.connect();
    const statuses = recordStatus(t);
    proxy.delayMs.toClient = 60_000; // TCP stays up but pings stop arriving: the relay drops the client, which reconnects
    await until(() => statuses.some((s) => s.type === 'disconnected'), 'the silence to be noticed', 3000);
    proxy.delayMs.toClient = 0;
    await until(() => t.state === 'connected', 'reconnect', 5000);
  });

  it('close() ends subscriptions and the status stream, and rejects later publishes with closed', async () => {
    const t = create(relay.url);
    await t.connect();
    const statuses = recordStatus(t);
    const iter = t.subscribe('coalmine.closing', new AbortController().signal)[Symbol.asyncIterator]();
    const pending = iter.next();
    await t.close();
    await expect(pending).resolves.toMatchObject({ done: true });
    await until(() => statuses.at(-1)?.type === 'closed', 'closed status');
    const err = await t.publish('coalmine.closing', text('late')).catch((e: unknown) => e);
    expect((err as TransportError).code).toBe('closed');
    await expect(t.connect()).rejects.toMatchObject({ code: 'closed' });
  });
});
