import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { create } from '../../src/transports/redis/index.js';
import {
  TransportError,
  type Delivery,
  type Transport,
  type TransportOptions,
  type TransportStatus,
} from '../../src/transports/transport.js';
import { freePort, waitFor } from '../support/net.js';
import { haveCommand } from '../support/require.js';
import { serviceReachable } from '../support/services.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { transportConformance } from '../support/transport-conformance.js';

const HOST = '127.0.0.1';
const PORT = 6379;
const up = await serviceReachable(
  HOST,
  PORT,
  'start Redis (`redis-server --port 6379`, or `apt-get install redis-server`)',
);
const haveServer = haveCommand(
  'redis-server',
  'install Redis (`apt-get install redis-server`) for the restart test',
);

const text = (s: string) => new TextEncoder().encode(s);
const str = (d: Delivery) => new TextDecoder().decode(d.payload);
const channelName = () => `coalmine.test.${randomBytes(4).toString('hex')}`;
const fast = { reconnect: { initialMs: 50, maxMs: 500 } };

/** Every status change of a transport from now on, with the time it was seen. */
function recordStatus(t: Transport): (TransportStatus & { at: number })[] {
  const seen: (TransportStatus & { at: number })[] = [];
  void (async () => {
    for await (const s of t.status()) seen.push({ ...s, at: Date.now() });
  })();
  return seen;
}

async function take(iter: AsyncIterator<Delivery>, n: number, timeoutMs: number): Promise<Delivery[]> {
  const out: Delivery[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    let timer: NodeJS.Timeout | undefined;
    const next = await Promise.race([
      iter.next(),
      new Promise<'timeout'>(
        (r) => (timer = setTimeout(() => r('timeout'), Math.max(0, deadline - Date.now()))),
      ),
    ]);
    clearTimeout(timer);
    if (next === 'timeout' || next.done) break;
    out.push(next.value);
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A private redis-server of the test's own, on a fixed port so it can come back at the same address. */
class PrivateRedis {
  private child: ChildProcess | undefined;
  constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  /** Starts the server and waits until it answers; resolves with the time it was spawned. */
  async start(): Promise<number> {
    const spawnedAt = Date.now();
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', this.dir],
      { stdio: 'ignore' },
    );
    child.on('error', () => undefined);
    this.child = child;
    await waitFor(`redis-server on port ${this.port}`, async () => {
      const probe = new Redis({ host: HOST, port: this.port, lazyConnect: true, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG' ? true : undefined;
      } finally {
        probe.disconnect();
      }
    });
    return spawnedAt;
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}

describe.skipIf(!up)('redis', () => {
  if (up) {
    transportConformance('redis pub/sub', {
      make: () => create(`redis://${HOST}:${PORT}`),
      acks: true,
      settleMs: 100,
    });
    transportConformance('redis streams', {
      make: () => create(`redis+stream://${HOST}:${PORT}/0?maxlen=5000`),
      acks: true,
      settleMs: 200,
    });
  }

  const open: Transport[] = [];
  const make = (url: string, opts: TransportOptions = fast) => {
    const t = create(url, opts);
    open.push(t);
    return t;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });
  afterAll(async () => {
    // The conformance suite leaves its streams in the shared server: remove them.
    const redis = new Redis({ host: HOST, port: PORT });
    try {
      for await (const keys of redis.scanStream({ match: 'coalmine.test.*', type: 'stream', count: 1000 })) {
        if ((keys as string[]).length > 0) await redis.del(...(keys as string[]));
      }
    } finally {
      redis.disconnect();
    }
  });

  it('rejects connect() with a TransportError naming the URL and the cause when nothing listens', async () => {
    const port = await freePort();
    const t = make(`redis://user:secret@${HOST}:${port}`);
    const err = await t.connect(AbortSignal.timeout(5000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).code).toBe('not_connected');
    expect((err as Error).message).toContain(`${HOST}:${port}`);
    expect((err as Error).message).toContain('ECONNREFUSED');
    expect((err as Error).message).not.toContain('secret');
    await expect(t.publish(channelName(), text('cm1 x'))).rejects.toMatchObject({ code: 'not_connected' });
  });

  it('rejects publish() before connect() and after close() without throwing synchronously', async () => {
    const t = make(`redis://${HOST}:${PORT}`);
    const early = t.publish(channelName(), text('cm1 early'));
    await expect(early).rejects.toMatchObject({ code: 'not_connected' });
    await t.connect();
    await t.close();
    await expect(t.publish(channelName(), text('cm1 late'))).rejects.toMatchObject({ code: 'closed' });
  });

  it('ends subscriptions and status streams on close', async () => {
    const t = make(`redis+stream://${HOST}:${PORT}`);
    await t.connect();
    const statuses = recordStatus(t);
    const iter = t.subscribe(channelName(), new AbortController().signal)[Symbol.asyncIterator]();
    const next = iter.next();
    await sleep(100);
    await t.close();
    await expect(next).resolves.toMatchObject({ done: true });
    await waitFor('closed status', async () => (statuses.at(-1)?.type === 'closed' ? true : undefined), 2000);
  });

  describe('streams', () => {
    it('stamps brokerNs from the entry id and bounds the stream with MAXLEN ~', async () => {
      const pub = make(`redis+stream://${HOST}:${PORT}?maxlen=100`);
      const sub = make(`redis+stream://${HOST}:${PORT}`, { ...fast, clientName: 'brokerns' });
      await Promise.all([pub.connect(), sub.connect()]);
      const ch = channelName();
      const ac = new AbortController();
      const iter = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      await sleep(200);
      const before = BigInt(Date.now()) * 1_000_000n;
      const receipt = await pub.publish(ch, text('cm1 first'));
      const [d] = await take(iter, 1, 5000);
      expect(d && str(d)).toBe('cm1 first');
      // Redis stamps with ms resolution, and our wall clock is anchored to Date.now() (also ms) once at
      // startup: on one host the two agree to within a couple of ms, not better.
      const slack = 2_000_000n;
      expect(d!.brokerNs).toBeDefined();
      expect(d!.brokerNs!).toBeGreaterThanOrEqual(before - slack);
      expect(d!.brokerNs!).toBeLessThanOrEqual(d!.receivedNs + slack);
      expect(receipt.ackNs! + slack).toBeGreaterThanOrEqual(d!.brokerNs!);

      await Promise.all(Array.from({ length: 2000 }, (_, i) => pub.publish(ch, text(`cm1 ${i}`))));
      const redis = new Redis({ host: HOST, port: PORT });
      try {
        const len = await redis.xlen(ch);
        // `~` trims whole macro nodes (100 entries each by default), so the length stays near the bound.
        expect(len).toBeGreaterThanOrEqual(100);
        expect(len).toBeLessThan(400);
        // The consumer group is named after the client, as the transport was told.
        const groups = (await redis.xinfo('GROUPS', ch)) as unknown[][];
        expect(groups.map((g) => String(g[1]))).toContain('brokerns');
        await redis.del(ch);
      } finally {
        redis.disconnect();
      }
      ac.abort();
    });

    it('delivers entries left pending by a previous run of the same consumer, then acknowledges them', async () => {
      const ch = channelName();
      const redis = new Redis({ host: HOST, port: PORT });
      try {
        // A previous incarnation read two entries but died before acknowledging them.
        await redis.xgroup('CREATE', ch, 'resume', '$', 'MKSTREAM');
        await redis.xadd(ch, '*', 'p', 'cm1 a');
        await redis.xadd(ch, '*', 'p', 'cm1 b');
        await redis.xreadgroup('GROUP', 'resume', 'c1', 'COUNT', 10, 'STREAMS', ch, '>');
        await redis.xadd(ch, '*', 'p', 'cm1 c');

        const sub = make(`redis+stream://${HOST}:${PORT}?group=resume&consumer=c1`);
        await sub.connect();
        const ac = new AbortController();
        const iter = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
        expect((await take(iter, 3, 5000)).map(str)).toEqual(['cm1 a', 'cm1 b', 'cm1 c']);
        ac.abort();
        await waitFor('all acknowledged', async () => {
          const [count] = (await redis.xpending(ch, 'resume')) as [number];
          return count === 0 ? true : undefined;
        });
        await redis.del(ch);
      } finally {
        redis.disconnect();
      }
    });

    describe('subscriber outage through a proxy', () => {
      let proxy: TcpProxy;
      beforeAll(async () => {
        proxy = await startTcpProxy({ host: HOST, port: PORT });
      });
      afterAll(async () => {
        await proxy?.close();
      });

      it('delivers what was published while the subscriber was away, after it reconnects', async () => {
        const pub = make(`redis+stream://${HOST}:${PORT}`);
        const sub = make(`redis+stream://${HOST}:${proxy.port}`);
        await Promise.all([pub.connect(), sub.connect()]);
        const statuses = recordStatus(sub);
        const ch = channelName();
        const ac = new AbortController();
        const iter = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
        await sleep(200);
        await pub.publish(ch, text('cm1 before'));
        expect((await take(iter, 1, 5000)).map(str)).toEqual(['cm1 before']);

        proxy.down();
        await waitFor(
          'subscriber disconnected',
          async () => (sub.state !== 'connected' ? true : undefined),
          5000,
        );
        await expect(sub.publish(ch, text('cm1 from-sub'))).rejects.toMatchObject({ code: 'not_connected' });
        const during = Array.from({ length: 5 }, (_, i) => `cm1 during-${i}`);
        for (const m of during) await pub.publish(ch, text(m));
        await sleep(300);

        proxy.up();
        const back = Date.now();
        await waitFor(
          'subscriber reconnected',
          async () => (sub.state === 'connected' ? true : undefined),
          5000,
        );
        const reconnectMs = statuses.at(-1)!.at - back;
        const got = await take(iter, 5, 5000);
        await pub.publish(ch, text('cm1 after'));
        got.push(...(await take(iter, 1, 5000)));
        ac.abort();
        console.log(`redis streams: subscriber reconnected ${reconnectMs} ms after the proxy came back`);

        expect(got.map(str)).toEqual([...during, 'cm1 after']);
        expect(reconnectMs).toBeLessThan(5000);
        const types = statuses.map((s) => s.type);
        const down = types.indexOf('disconnected');
        expect(down).toBeGreaterThanOrEqual(0);
        expect(types.indexOf('reconnecting', down)).toBeGreaterThan(down);
        expect(types.lastIndexOf('connected')).toBeGreaterThan(types.indexOf('reconnecting', down));
      });
    });
  });

  describe.skipIf(!haveServer)('broker restart (private redis-server)', () => {
    let server: PrivateRedis;
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'coalmine-redis-'));
      server = new PrivateRedis(await freePort(), dir);
      await server.start();
    });
    afterAll(async () => {
      await server?.kill();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('pub/sub: fails publishes during the outage, reconnects, and resubscribes', async () => {
      const url = `redis://${HOST}:${server.port}`;
      const pub = make(url);
      const sub = make(url);
      await Promise.all([pub.connect(), sub.connect()]);
      const statuses = recordStatus(sub);
      const ch = channelName();
      const ac = new AbortController();
      const iter = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      await sleep(100);
      await pub.publish(ch, text('cm1 before'));
      expect((await take(iter, 1, 5000)).map(str)).toEqual(['cm1 before']);

      await server.kill();
      await waitFor(
        'publisher disconnected',
        async () => (pub.state !== 'connected' ? true : undefined),
        5000,
      );
      const err = await pub.publish(ch, text('cm1 during')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransportError);
      expect(['not_connected', 'timeout']).toContain((err as TransportError).code);
      await sleep(500);

      // Measured from the moment the new server process was started, so it includes its start-up.
      const restartedAt = await server.start();
      await waitFor(
        'both reconnected',
        async () => (pub.state === 'connected' && sub.state === 'connected' ? true : undefined),
        5000,
      );
      const reconnectMs = statuses.at(-1)!.at - restartedAt;
      console.log(`redis pub/sub: reconnected ${reconnectMs} ms after redis-server was started again`);
      await pub.publish(ch, text('cm1 after'));
      const got = await take(iter, 1, 5000);
      ac.abort();

      // What was published during the outage is gone (pub/sub keeps nothing); what came after arrives.
      expect(got.map(str)).toEqual(['cm1 after']);
      expect(reconnectMs).toBeLessThan(5000);
      const types = statuses.map((s) => s.type);
      const down = types.indexOf('disconnected');
      expect(down).toBeGreaterThanOrEqual(0);
      const retry = statuses.findIndex((s, i) => i > down && s.type === 'reconnecting');
      expect(retry).toBeGreaterThan(down);
      expect(statuses[retry]).toMatchObject({ attempt: expect.any(Number), delayMs: expect.any(Number) });
      expect(types.lastIndexOf('connected')).toBeGreaterThan(retry);
    });

    it('streams: a subscription survives a restart that lost the group (no persistence)', async () => {
      const url = `redis+stream://${HOST}:${server.port}`;
      const pub = make(url);
      const sub = make(url);
      await Promise.all([pub.connect(), sub.connect()]);
      const ch = channelName();
      const ac = new AbortController();
      const iter = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      await sleep(200);
      await pub.publish(ch, text('cm1 before'));
      expect((await take(iter, 1, 5000)).map(str)).toEqual(['cm1 before']);

      await server.kill();
      await waitFor('disconnected', async () => (sub.state !== 'connected' ? true : undefined), 5000);
      await server.start();
      await waitFor(
        'both reconnected',
        async () => (pub.state === 'connected' && sub.state === 'connected' ? true : undefined),
        5000,
      );
      await pub.publish(ch, text('cm1 after'));
      const got = await take(iter, 1, 5000);
      ac.abort();
      expect(got.map(str)).toEqual(['cm1 after']);
    });
  });
});
