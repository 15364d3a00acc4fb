import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { create } from '../../src/transports/redis/index.js';
import { TransportError, type Transport, type TransportOptions } from '../../src/transports/transport.js';
import { sleep, take } from '../support/async.js';
import { BrokerProcess, tempDir, type TempDir } from '../support/brokers.js';
import {
  channelName,
  decode as str,
  expectNotConnected,
  expectOutageAndRecovery,
  fastReconnect as fast,
  recordStatus,
  text,
} from '../support/transports.js';
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

/** A private redis-server of the test's own, on a fixed port so it can come back at the same address. */
function privateRedis(port: number, dir: string): BrokerProcess {
  return new BrokerProcess({
    name: `redis-server on port ${port}`,
    command: 'redis-server',
    args: ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir],
    ready: async () => {
      const probe = new Redis({ host: HOST, port, lazyConnect: true, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } finally {
        probe.disconnect();
      }
    },
  });
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
    expectNotConnected(err, `${HOST}:${port}`, 'ECONNREFUSED');
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

  describe('pub/sub batches (publish-batch.ts)', () => {
    /** Publishes `n` messages to `channel` in one turn of the event loop, as a canary's tick does. */
    const burst = (t: Transport, channel: string, n: number, tag: string) =>
      Array.from({ length: n }, (_, i) => t.publish(channel, text(`${tag} ${i}`)));

    /** A user of the shared server for one test, removed after it (ACL SETUSER with the given rules). */
    async function withUser(rules: string[], body: (url: string) => Promise<void>): Promise<void> {
      const admin = new Redis({ host: HOST, port: PORT });
      const user = `coalmine-test-${Math.random().toString(36).slice(2, 10)}`;
      try {
        await admin.call('ACL', 'SETUSER', user, 'on', '>pw', '~*', ...rules);
        await body(`redis://${user}:pw@${HOST}:${PORT}`);
      } finally {
        await admin.call('ACL', 'DELUSER', user);
        admin.disconnect();
      }
    }

    async function deliveredInOrder(url: string, n: number): Promise<void> {
      const t = make(url);
      await t.connect();
      const channel = channelName();
      const ctl = new AbortController();
      const iter = t.subscribe(channel, ctl.signal)[Symbol.asyncIterator]();
      await sleep(200);
      // 2,500 in one turn: three script calls (1,000 + 1,000 + 500), each confirming its messages.
      const receipts = await Promise.all(burst(t, channel, n, 'cm1'));
      expect(receipts).toHaveLength(n);
      for (const r of receipts) expect(r.ackNs).toBeGreaterThan(0n);
      const got = (await take(iter, n, 10_000)).map(str);
      expect(got).toEqual(Array.from({ length: n }, (_, i) => `cm1 ${i}`));
      ctl.abort();
    }

    /** Script calls the server has run (EVALSHA, and EVAL when it did not know the script yet). */
    async function scriptCalls(): Promise<number> {
      const admin = new Redis({ host: HOST, port: PORT });
      try {
        const info = await admin.info('commandstats');
        let n = 0;
        for (const m of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) n += Number(m[1]);
        return n;
      } finally {
        admin.disconnect();
      }
    }

    it('delivers every message of a burst once and in order, each publish confirmed', async () => {
      const before = await scriptCalls();
      await deliveredInOrder(`redis://${HOST}:${PORT}`, 2500);
      // The burst went as batches (other tests on the server only add to the count).
      expect((await scriptCalls()) - before).toBeGreaterThanOrEqual(3);
    });

    it('falls back to one PUBLISH per message when the server runs no script for this user', async () => {
      // NOPERM on EVALSHA: nothing of the first batch went out; it and every later one go as PUBLISHes.
      await withUser(['&*', '+@all', '-@scripting'], async (url) => {
        await deliveredInOrder(url, 300);
        // The fallback was taken: the server refused this user's script call.
        const admin = new Redis({ host: HOST, port: PORT });
        try {
          const log = (await admin.call('ACL', 'LOG')) as unknown[][];
          const user = new URL(url).username;
          const refused = log.some((entry) => {
            const f = new Map<string, unknown>();
            for (let i = 0; i + 1 < entry.length; i += 2) f.set(String(entry[i]), entry[i + 1]);
            return f.get('username') === user && /^eval/.test(String(f.get('object')));
          });
          expect(refused).toBe(true);
        } finally {
          admin.disconnect();
        }
      });
    });

    it('rejects every message of a batch the server refuses, and still sends to channels it allows', async () => {
      await withUser(['&coalmine.test.*', '+@all'], async (url) => {
        const t = make(url);
        await t.connect();
        const refused = await Promise.allSettled(burst(t, 'forbidden.channel', 5, 'cm1'));
        for (const r of refused) {
          expect(r.status).toBe('rejected');
          expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'rejected' });
          expect(String((r as PromiseRejectedResult).reason)).toContain('publish to the channel');
        }
        const single = await t.publish('forbidden.channel', text('cm1 alone')).catch((e: unknown) => e);
        expect(single).toMatchObject({ code: 'rejected' });
        // The same connection still publishes a burst where it may.
        const channel = channelName();
        const ctl = new AbortController();
        const iter = t.subscribe(channel, ctl.signal)[Symbol.asyncIterator]();
        await sleep(200);
        await Promise.all(burst(t, channel, 50, 'ok'));
        expect((await take(iter, 50, 5000)).map(str)).toEqual(
          Array.from({ length: 50 }, (_, i) => `ok ${i}`),
        );
        ctl.abort();
      });
    });
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
        expectOutageAndRecovery(statuses);
      });
    });
  });

  describe.skipIf(!haveServer)('broker restart (private redis-server)', () => {
    let server: BrokerProcess;
    let port: number;
    let dir: TempDir;
    beforeAll(async () => {
      dir = await tempDir('coalmine-redis-');
      port = await freePort();
      server = privateRedis(port, dir.path);
      await server.start();
    });
    afterAll(async () => {
      await server?.kill();
      await dir?.remove();
    });

    it('pub/sub: fails publishes during the outage, reconnects, and resubscribes', async () => {
      const url = `redis://${HOST}:${port}`;
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
      const retry = expectOutageAndRecovery(statuses);
      expect(statuses[retry]).toMatchObject({ attempt: expect.any(Number), delayMs: expect.any(Number) });
    });

    it('streams: a subscription survives a restart that lost the group (no persistence)', async () => {
      const url = `redis+stream://${HOST}:${port}`;
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
