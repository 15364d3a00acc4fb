import { createServer, request, type RequestListener, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create, WebhookTransport } from '../../src/transports/webhook/index.js';
import { TransportError } from '../../src/transports/transport.js';
import { nextWithin, until } from '../support/async.js';
import {
  decode,
  expectNotConnected,
  fastReconnect as fast,
  nextText,
  recordStatus,
  text,
} from '../support/transports.js';
import { freePort } from '../support/net.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { transportConformance } from '../support/transport-conformance.js';

// Webhooks need no external service: each transport runs its own HTTP server on loopback.
let sharedUrl: string;
beforeAll(async () => {
  sharedUrl = `http://127.0.0.1:${await freePort()}/hooks`;
});

// One URL for both sides: publisher and subscriber share the server at the peer's address.
transportConformance('webhook', {
  make: () => create(sharedUrl),
  acks: true,
  settleMs: 0,
  maxPayload: 256 * 1024,
});

async function httpServer(handler: RequestListener): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : 0 };
}

describe('webhook: specific behaviour', () => {
  const owned: { close(): unknown }[] = [];
  afterAll(async () => {
    for (const o of owned.reverse()) await o.close();
  });
  const make = (url: string) => {
    const t = create(url, fast);
    owned.push(t);
    return t;
  };

  it('lets a canary and a coalminer with their own listen ports talk both ways', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const canary = make(`http://127.0.0.1:${b}?listen=127.0.0.1:${a}`);
    const coalminer = make(`http://127.0.0.1:${a}?listen=127.0.0.1:${b}`);
    await Promise.all([canary.connect(), coalminer.connect()]);
    const ac = new AbortController();
    const pings = coalminer.subscribe('coalmine.coalminer.eu-1', ac.signal)[Symbol.asyncIterator]();
    const registrations = canary.subscribe('coalmine.canary.c1', ac.signal)[Symbol.asyncIterator]();

    const reg = await coalminer.publish('coalmine.canary.c1', text('cm1 register'));
    expect(await nextText(registrations, 2000)).toBe('cm1 register');
    const before = BigInt(Date.now()) * 1_000_000n;
    const receipt = await canary.publish('coalmine.coalminer.eu-1', text('cm1 ping'));
    const ping = await nextWithin(pings, 2000);
    expect(ping && decode(ping)).toBe('cm1 ping');
    // ackNs is when the 2xx came back, after the coalminer had the whole body.
    expect(receipt.ackNs!).toBeGreaterThanOrEqual(ping!.receivedNs);
    expect(ping!.receivedNs).toBeGreaterThanOrEqual(before - 2_000_000n);
    expect(ping!.brokerNs).toBeUndefined();
    expect(reg.ackNs).toBeDefined();
    ac.abort();
  });

  it('rejects with not_connected when nothing listens at the peer, and reports the peer down', async () => {
    const peer = await freePort();
    const t = make(`http://127.0.0.1:${peer}?listen=127.0.0.1:0`);
    await t.connect();
    expect(t.state).toBe('connected'); // the peer need not be up for our side to be ready
    const statuses = recordStatus(t);
    const err = await t.publish('coalmine.x', text('cm1 x')).catch((e: unknown) => e);
    expectNotConnected(err, 'ECONNREFUSED');
    await until(() => statuses.some((s) => s.type === 'reconnecting'), 'reconnecting');
    expect(statuses.map((s) => s.type).slice(0, 3)).toEqual(['connected', 'disconnected', 'reconnecting']);
  });

  it('reports the outage of the path to the coalminer and recovers within 5 s; the subscription carries on', async () => {
    const coalminerPort = await freePort();
    const coalminer = make(`http://127.0.0.1:${coalminerPort}`);
    await coalminer.connect();
    const ac = new AbortController();
    const pings = coalminer.subscribe('coalmine.coalminer.proxy', ac.signal)[Symbol.asyncIterator]();
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: coalminerPort });
    owned.push(proxy);
    const canary = make(`http://127.0.0.1:${proxy.port}?listen=127.0.0.1:0`);
    await canary.connect();
    const statuses = recordStatus(canary);
    await canary.publish('coalmine.coalminer.proxy', text('before'));
    expect(await nextText(pings, 2000)).toBe('before');

    proxy.down();
    const during = await canary.publish('coalmine.coalminer.proxy', text('during')).catch((e: unknown) => e);
    expect((during as TransportError).code).toBe('not_connected');
    await until(() => statuses.filter((s) => s.type === 'reconnecting').length >= 2, 'probing');

    proxy.up();
    const back = Date.now();
    await until(() => canary.state === 'connected', 'connected again', 5000);
    console.log(`webhook: peer reachable again ${Date.now() - back} ms after the outage ended`);
    const types = statuses.map((s) => s.type);
    expect(types.slice(types.indexOf('disconnected'))).toEqual(
      expect.arrayContaining(['disconnected', 'reconnecting', 'connected']),
    );
    expect(types.lastIndexOf('connected')).toBeGreaterThan(types.indexOf('reconnecting'));

    await canary.publish('coalmine.coalminer.proxy', text('after'));
    expect(await nextText(pings, 2000)).toBe('after');
    ac.abort();
  });

  it('rejects with the status when the peer answers 500', async () => {
    const { server, port } = await httpServer((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('database on fire');
    });
    owned.push({ close: () => new Promise((r) => server.close(r)) });
    const t = make(`http://127.0.0.1:${port}?listen=127.0.0.1:0`);
    await t.connect();
    const err = await t.publish('coalmine.x', text('cm1 x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).code).toBe('rejected');
    expect((err as Error).message).toMatch(/answered 500: database on fire/);
    expect(((err as Error).cause as { status: number }).status).toBe(500);
    expect(t.state).toBe('connected'); // the peer is up, it just refused
    server.closeAllConnections();
  });

  it('times out when the peer does not answer', async () => {
    const { server, port } = await httpServer(() => {}); // takes the request, never responds
    owned.push({
      close: () => {
        server.closeAllConnections();
        return new Promise((r) => server.close(r));
      },
    });
    const t = make(`http://127.0.0.1:${port}?listen=127.0.0.1:0`);
    await t.connect();
    const started = Date.now();
    const err = await t.publish('coalmine.x', text('cm1 x'), { timeoutMs: 200 }).catch((e: unknown) => e);
    expect((err as TransportError).code).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('answers a body over the limit with 413, which the publisher sees as too_large', async () => {
    const port = await freePort();
    const t = make(`http://127.0.0.1:${port}?maxBody=1024`);
    await t.connect();
    const ac = new AbortController();
    const iter = t.subscribe('coalmine.big', ac.signal)[Symbol.asyncIterator]();
    const post = (body: Uint8Array, headers: Record<string, string> = {}) =>
      fetch(`http://127.0.0.1:${port}/coalmine.big`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/octet-stream', ...headers },
      });
    const declared = await post(new Uint8Array(4096));
    expect(declared.status).toBe(413);
    await declared.text();
    // Without a content-length, the server counts as it reads.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request(`http://127.0.0.1:${port}/coalmine.big`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 8; i++) req.write(new Uint8Array(512));
      req.end();
    });
    expect(chunked).toBe(413);

    const err = await t.publish('coalmine.big', new Uint8Array(200_000)).catch((e: unknown) => e);
    expect((err as TransportError).code).toBe('too_large');
    await expect(t.publish('coalmine.big', new Uint8Array(1024))).resolves.toHaveProperty('ackNs');
    expect((await nextWithin(iter, 2000))?.payload.length).toBe(1024);
    ac.abort();
  });

  it('answers wrong paths, methods and content types without crashing', async () => {
    const port = await freePort();
    const t = make(`http://127.0.0.1:${port}/hooks`);
    await t.connect();
    const ac = new AbortController();
    const iter = t.subscribe('coalmine.ok', ac.signal)[Symbol.asyncIterator]();
    const base = `http://127.0.0.1:${port}`;
    const octets = { 'content-type': 'application/octet-stream' };
    const statusOf = async (path: string, init: RequestInit) => {
      const res = await fetch(base + path, init);
      await res.text();
      return res.status;
    };
    expect(await statusOf('/hooks/coalmine.ok', { method: 'GET' })).toBe(405);
    expect(await statusOf('/elsewhere/coalmine.ok', { method: 'POST', body: 'x', headers: octets })).toBe(
      404,
    );
    expect(await statusOf('/hooks/bad%20channel', { method: 'POST', body: 'x', headers: octets })).toBe(404);
    expect(await statusOf('/hooks/coalmine.nobody', { method: 'POST', body: 'x', headers: octets })).toBe(
      202,
    );
    expect(
      await statusOf('/hooks/coalmine.ok', {
        method: 'POST',
        body: 'x',
        headers: { 'content-type': 'text/plain' },
      }),
    ).toBe(415);
    expect(await statusOf('/hooks/coalmine.ok', { method: 'POST', body: 'fine', headers: octets })).toBe(204);
    expect(await nextText(iter, 2000)).toBe('fine');
    ac.abort();
  });

  it('fails connect() with not_connected when its listen port is taken', async () => {
    const squatter = createTcpServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
    owned.push({ close: () => new Promise((r) => squatter.close(r)) });
    const port = (squatter.address() as { port: number }).port;
    const err = await make(`http://127.0.0.1:${port}`)
      .connect()
      .catch((e: unknown) => e);
    expect((err as TransportError).code).toBe('not_connected');
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect((err as Error).message).toContain('EADDRINUSE');
  });

  it('shares one server between URLs on the same address, and refuses to share it under other settings', async () => {
    const port = await freePort();
    const a = make(`http://127.0.0.1:${port}/hooks`);
    const b = make(`http://127.0.0.1:${port}/hooks`);
    await Promise.all([a.connect(), b.connect()]);
    const ac = new AbortController();
    const atB = b.subscribe('coalmine.shared', ac.signal)[Symbol.asyncIterator]();
    await a.publish('coalmine.shared', text('cm1 shared'));
    expect(await nextText(atB, 2000)).toBe('cm1 shared');
    ac.abort();
    const other = await make(`http://127.0.0.1:${port}/elsewhere`)
      .connect()
      .catch((e: unknown) => e);
    expect((other as TransportError).code).toBe('not_connected');
    expect((other as Error).message).toContain('"/hooks"');
  });

  it('needs ?listen= for a remote peer, and only publishes with listen=none', async () => {
    expect(() => create('http://coalminer.example:9401')).toThrow(/listen=HOST:PORT/);
    const t = make('http://coalminer.example:9401?listen=none');
    await t.connect();
    const iter = t.subscribe('coalmine.x', new AbortController().signal)[Symbol.asyncIterator]();
    const err = await iter.next().catch((e: unknown) => e);
    expect((err as TransportError).code).toBe('rejected');
  });

  it('reports where it listens, and close() ends subscriptions and frees the port', async () => {
    const t = new WebhookTransport('http://127.0.0.1:1?listen=127.0.0.1:0');
    await t.connect();
    const port = t.listenAddress!.port;
    expect(port).toBeGreaterThan(0);
    const pending = t.subscribe('coalmine.end', new AbortController().signal)[Symbol.asyncIterator]().next();
    await Promise.all([t.close(), t.close()]);
    await expect(pending).resolves.toMatchObject({ done: true });
    expect(t.state).toBe('closed');
    const probe = createTcpServer();
    await new Promise<void>((resolve, reject) =>
      probe.once('error', reject).listen(port, '127.0.0.1', resolve),
    );
    await new Promise((r) => probe.close(r));
  });
});
