/**
 * Whoever starts a connection closes it: a NATS connect() given up on through its signal leaves no
 * socket behind (one that completes late is closed, rather than reconnecting forever), and the listener it
 * put on the signal is gone whichever way connect() ends.
 */
import { getEventListeners } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NatsTransport } from '../../src/transports/nats/index.js';
import { TransportError } from '../../src/transports/transport.js';
import { waitFor } from '../support/net.js';
import { serviceReachable } from '../support/services.js';

const NATS = { host: '127.0.0.1', port: 4222 };
const reachable = await serviceReachable(
  NATS.host,
  NATS.port,
  'start nats-server with JetStream on 127.0.0.1:4222 (`nats-server -js`)',
);

/** A server on loopback that counts the client connections still open on it. */
interface Listener {
  port: number;
  open(): number;
  close(): Promise<void>;
}

async function listen(onSocket: (s: Socket) => void): Promise<Listener> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
    onSocket(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    open: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A pass-through to the real NATS that starts piping each connection after `delayMs`. */
function proxyToNats(delayMs: number): Promise<Listener> {
  return listen((s) => {
    s.pause();
    setTimeout(() => {
      const up = connect(NATS);
      up.on('error', () => s.destroy());
      s.on('close', () => up.destroy());
      up.on('close', () => s.destroy());
      s.pipe(up).pipe(s);
      s.resume();
    }, delayMs);
  });
}

const listeners: Listener[] = [];
afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.close()));
});

async function expectGaveUp(p: Promise<void>): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TransportError);
  expect((err as TransportError).code).toBe('timeout');
}

describe('NATS connect aborted by its signal', () => {
  it('to a server that never answers: rejects at once and removes its listener', async () => {
    const silent = await listen(() => {});
    listeners.push(silent);
    const t = new NatsTransport(`nats://127.0.0.1:${silent.port}`);
    const ac = new AbortController();
    const connecting = t.connect(ac.signal);
    await waitFor('the connection to arrive', () => Promise.resolve(silent.open() === 1 || undefined));
    const abortedAt = performance.now();
    ac.abort(new Error('test gave up'));
    await expectGaveUp(connecting);
    expect(performance.now() - abortedAt).toBeLessThan(500);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    // The connection waiting for INFO is ours (info-probe.ts), not nats.js's, so it is gone too.
    await waitFor(
      'the silent connection to close',
      () => Promise.resolve(silent.open() === 0 || undefined),
      1000,
    );
    await t.close();
  });

  it('to a server that accepts but never speaks NATS: fails saying so, and leaves no socket open', async () => {
    const silent = await listen(() => {});
    listeners.push(silent);
    const t = new NatsTransport(`nats://127.0.0.1:${silent.port}`);
    const started = performance.now();
    const err = await t.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).code).toBe('not_connected');
    expect((err as Error).message).toContain('sent no NATS INFO within 5 s');
    // nats.js 2.29 would have kept this socket open forever: its transport only closes connected ones.
    expect(performance.now() - started).toBeLessThan(7000);
    await waitFor(
      'the silent connection to close',
      () => Promise.resolve(silent.open() === 0 || undefined),
      1000,
    );
    await t.close();
  }, 10_000);

  it.runIf(reachable)(
    'to a NATS that answers after the abort: the late connection is closed, not kept reconnecting',
    async () => {
      // Holds each connection for 300 ms before passing it on: connect() completes after the abort.
      const slow = await proxyToNats(300);
      listeners.push(slow);
      const t = new NatsTransport(`nats://127.0.0.1:${slow.port}`);
      const signal = AbortSignal.timeout(100);
      await expectGaveUp(t.connect(signal));
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);
      await waitFor(
        'the late connection to close',
        () => Promise.resolve(slow.open() === 0 || undefined),
        3000,
      );
      await t.close();
    },
    10_000,
  );

  it.runIf(reachable)(
    'to the real NATS, aborted as connect() starts: no socket stays open',
    async () => {
      // Through a counting pass-through, to see the connection nats.js makes to the real server.
      const proxy = await proxyToNats(0);
      listeners.push(proxy);
      const t = new NatsTransport(`nats://127.0.0.1:${proxy.port}`);
      const ac = new AbortController();
      const connecting = t.connect(ac.signal);
      ac.abort(new Error('test gave up'));
      await expectGaveUp(connecting);
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
      // The abandoned dial to loopback would be connected well within this; then it must be gone again.
      await new Promise((r) => setTimeout(r, 1000));
      expect(proxy.open()).toBe(0);
      await t.close();
    },
    30_000,
  );

  it.runIf(reachable)('that succeeds: the listener on the signal is removed', async () => {
    const t = new NatsTransport(`nats://${NATS.host}:${NATS.port}`);
    const ac = new AbortController();
    await t.connect(ac.signal);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    await t.close();
  });
});
