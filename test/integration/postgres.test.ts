import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { create } from '../../src/transports/postgres/index.js';
import { TransportError, type Transport, type TransportOptions } from '../../src/transports/transport.js';
import { sleep, take } from '../support/async.js';
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
import { serviceReachable } from '../support/services.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { transportConformance } from '../support/transport-conformance.js';

const HOST = '127.0.0.1';
const PORT = 5432;
const url = (port = PORT) => `postgres://postgres@${HOST}:${port}/test`;
const up = await serviceReachable(
  HOST,
  PORT,
  'start PostgreSQL with trust auth for user postgres and a database `test` (`apt-get install postgresql`, `createdb test`)',
);

describe.skipIf(!up)('postgres', () => {
  if (up) {
    transportConformance('postgres LISTEN/NOTIFY', {
      make: () => create(url()),
      acks: true,
      maxPayload: 7000,
      settleMs: 100,
    });
  }

  const open: Transport[] = [];
  const make = (u: string, opts: TransportOptions = fast) => {
    const t = create(u, opts);
    open.push(t);
    return t;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });

  it('rejects connect() with a TransportError naming the URL and the cause when nothing listens', async () => {
    const port = await freePort();
    const t = make(`postgres://postgres:secret@${HOST}:${port}/test`);
    const err = await t.connect(AbortSignal.timeout(5000)).catch((e: unknown) => e);
    expectNotConnected(err, `${HOST}:${port}`, 'ECONNREFUSED');
    expect((err as Error).message).not.toContain('secret');
  });

  it('names a missing database in the connect() error', async () => {
    const t = make(`postgres://postgres@${HOST}:${PORT}/coalmine_no_such_db`);
    await expect(t.connect(AbortSignal.timeout(5000))).rejects.toMatchObject({
      code: 'not_connected',
      message: expect.stringContaining('coalmine_no_such_db'),
    });
  });

  describe('on one connected transport', () => {
    let t: Transport;
    beforeAll(async () => {
      t = create(url(), { ...fast, clientName: 'postgres-test' });
      await t.connect(AbortSignal.timeout(10_000));
    });
    afterAll(async () => {
      await t?.close();
    });

    it('refuses payloads NOTIFY cannot carry with too_large, before sending', async () => {
      const ch = channelName();
      await expect(t.publish(ch, text('cm1 ' + 'a'.repeat(7996)))).rejects.toMatchObject({
        code: 'too_large',
      });
      await expect(t.publish(ch, text('cm1 ünïcode'))).rejects.toMatchObject({ code: 'too_large' });
      await expect(t.publish(ch, text('cm1 two\nlines'))).rejects.toMatchObject({ code: 'too_large' });
      await expect(t.publish(ch, text('cm1 ' + 'a'.repeat(7995)))).resolves.toMatchObject({
        ackNs: expect.any(BigInt),
      });
    });

    it('keeps channel names exact: case, dots, and names longer than 63 bytes', async () => {
      const names = [
        `Coalmine.Test.${randomBytes(4).toString('hex')}`,
        `coalmine.test.${randomBytes(4).toString('hex')}.${'x'.repeat(60)}`,
        `coalmine.test.${randomBytes(4).toString('hex')}.${'x'.repeat(60)}.other`,
      ];
      const ac = new AbortController();
      const iters = names.map((n) => t.subscribe(n, ac.signal)[Symbol.asyncIterator]());
      const lower = t.subscribe(names[0]!.toLowerCase(), ac.signal)[Symbol.asyncIterator]();
      await sleep(100);
      for (const n of names) await t.publish(n, text(`cm1 ${n.length}:${n.slice(-5)}`));
      for (const [i, it] of iters.entries()) {
        expect((await take(it, 1, 5000)).map(str)).toEqual([
          `cm1 ${names[i]!.length}:${names[i]!.slice(-5)}`,
        ]);
      }
      expect(await take(lower, 1, 300)).toEqual([]);
      ac.abort();
    });

    it('holds exactly two sessions, and none after close', async () => {
      const admin = new pg.Client({ connectionString: url() });
      await admin.connect();
      try {
        const sessions = async (name: string) =>
          Number(
            (
              await admin.query('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [
                name,
              ])
            ).rows[0].n,
          );
        const clientName = `sessions-${randomBytes(3).toString('hex')}`;
        const other = make(url(), { ...fast, clientName });
        await other.connect();
        // The transport names its sessions after the client, so an operator can find them.
        const name = `coalmine ${clientName}`;
        expect(await sessions(name)).toBe(2);
        await other.close();
        await waitFor('sessions gone', async () => ((await sessions(name)) === 0 ? true : undefined), 5000);
      } finally {
        await admin.end();
      }
    });
  });

  describe('outage through a proxy', () => {
    let proxy: TcpProxy;
    beforeAll(async () => {
      proxy = await startTcpProxy({ host: HOST, port: PORT });
    });
    afterAll(async () => {
      await proxy?.close();
    });

    it('fails publishes during the outage, reconnects, and LISTENs again', async () => {
      const t = make(url(proxy.port));
      const direct = make(url());
      await Promise.all([t.connect(), direct.connect()]);
      const statuses = recordStatus(t);
      const ch = channelName();
      const ac = new AbortController();
      const iter = t.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      await sleep(100);
      await t.publish(ch, text('cm1 before'));
      expect((await take(iter, 1, 5000)).map(str)).toEqual(['cm1 before']);

      proxy.down();
      await waitFor('disconnected', async () => (t.state !== 'connected' ? true : undefined), 5000);
      const err = await t.publish(ch, text('cm1 during')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransportError);
      expect(['not_connected', 'timeout']).toContain((err as TransportError).code);
      // NOTIFY keeps nothing for a listener that is away: this one is lost, and must not show up later.
      await direct.publish(ch, text('cm1 lost'));
      await sleep(300);

      proxy.up();
      const back = Date.now();
      await waitFor('reconnected', async () => (t.state === 'connected' ? true : undefined), 5000);
      const reconnectMs = statuses.at(-1)!.at - back;
      console.log(`postgres: reconnected ${reconnectMs} ms after the proxy came back`);
      await t.publish(ch, text('cm1 after'));
      await direct.publish(ch, text('cm1 after-direct'));
      const got = await take(iter, 2, 5000);
      got.push(...(await take(iter, 1, 300)));
      ac.abort();

      expect(got.map(str)).toEqual(['cm1 after', 'cm1 after-direct']);
      expect(reconnectMs).toBeLessThan(5000);
      const retry = expectOutageAndRecovery(statuses);
      expect(statuses[retry]).toMatchObject({ attempt: 1, delayMs: expect.any(Number) });
    });
  });
});
