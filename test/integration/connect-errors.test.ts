/**
 * What a person reads when the first connection fails: "cannot connect to URL: why — hint" once, with the
 * hint that fits why (nothing listening: start the server; a refused login: the credentials; an unknown
 * host: the name), against the real servers on loopback. And a PostgreSQL URL without a user connects as
 * libpq would: as PGUSER, else the operating system user.
 */
import { getEventListeners } from 'node:events';
import { userInfo } from 'node:os';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { main, type Io } from '../../src/cli/main.js';
import { createTransport } from '../../src/transports/registry.js';
import type { Transport } from '../../src/transports/transport.js';
import { freePort } from '../support/net.js';
import { serviceReachable } from '../support/services.js';

const up = {
  redis: await serviceReachable('127.0.0.1', 6379, 'redis-server --daemonize yes'),
  amqp: await serviceReachable('127.0.0.1', 5672, 'start RabbitMQ (guest/guest)'),
  postgres: await serviceReachable('127.0.0.1', 5432, 'start PostgreSQL (trust, db test)'),
};

const opened: Transport[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

/** The message of the first connect's failure. */
async function connectError(url: string, clientName?: string): Promise<string> {
  const t = await createTransport(url, { clientName, reconnect: { initialMs: 50, maxMs: 100 } });
  opened.push(t);
  const err = await t.connect(AbortSignal.timeout(10_000)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${url} connected`).toBeInstanceOf(Error);
  return (err as Error).message;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** One prefix, the reason, then exactly this hint. */
function expectShape(message: string, displayUrl: string, hint: string): void {
  expect(message.match(/cannot connect to/g)).toHaveLength(1);
  expect(message).toMatch(new RegExp(`^cannot connect to ${escape(displayUrl)}: \\S.* — ${escape(hint)}$`));
}

describe('a refused connection says nothing listens there, and how to start the server', () => {
  const cases: [string, (port: number) => string, string][] = [
    ['redis', (p) => `redis://127.0.0.1:${p}`, 'start Redis (redis-server)'],
    ['amqp', (p) => `amqp://guest:guest@127.0.0.1:${p}`, 'start RabbitMQ'],
    ['mqtt', (p) => `mqtt://127.0.0.1:${p}`, 'start the MQTT broker (mosquitto)'],
    ['nats', (p) => `nats://127.0.0.1:${p}`, 'start nats-server (nats-server -js for JetStream)'],
    ['kafka', (p) => `kafka://127.0.0.1:${p}`, 'start Kafka (for tests: bash scripts/kafka.sh start)'],
    ['postgres', (p) => `postgres://postgres@127.0.0.1:${p}/test`, 'start PostgreSQL'],
    [
      'websocket',
      (p) => `ws://127.0.0.1:${p}/`,
      `start a coalmine relay (coalmine relay --listen HOST:PORT)`,
    ],
  ];
  it.each(cases)('%s', async (_kind, urlOf, start) => {
    const port = await freePort();
    const url = urlOf(port);
    const message = await connectError(url);
    const shown = url.replace('guest:guest@', 'guest:***@');
    expectShape(
      message,
      shown,
      `nothing is listening there: ${start.replace('PORT', String(port))} or fix the host and port`,
    );
  });
});

describe('a refused login says to check the credentials', () => {
  it.runIf(up.amqp)('RabbitMQ, wrong password', async () => {
    const message = await connectError('amqp://guest:wrong@127.0.0.1:5672');
    expectShape(
      message,
      'amqp://guest:***@127.0.0.1:5672',
      'the server refused the login: check the user, password and vhost',
    );
    expect(message).toContain('ACCESS_REFUSED');
  });

  it.runIf(up.redis)('Redis, a user it does not have', async () => {
    const message = await connectError('redis://nobody:wrong@127.0.0.1:6379');
    expectShape(
      message,
      'redis://nobody:***@127.0.0.1:6379',
      'the server refused the login: check the user, password and database number',
    );
    expect(message).toContain('WRONGPASS');
  });

  it.runIf(up.postgres)('PostgreSQL, a role it does not have', async () => {
    const message = await connectError('postgres://coalmine_no_such_role@127.0.0.1:5432/test');
    expectShape(
      message,
      'postgres://coalmine_no_such_role@127.0.0.1:5432/test',
      'the server refused the login: check the user, password and database',
    );
  });
});

it('an unknown host says to check the name', async () => {
  const message = await connectError('redis://no-such-host.invalid:6379');
  expectShape(message, 'redis://no-such-host.invalid:6379', 'the host name does not resolve: check it');
});

it.runIf(up.redis)('the CLI says "cannot connect to" once', async () => {
  const port = await freePort();
  const err: string[] = [];
  const io: Io = { out: () => {}, err: (l) => err.push(l), isTty: false };
  const code = await main(
    ['node', 'coalmine', 'pair', `redis://127.0.0.1:${port}`, '--duration', '1s'],
    io,
    {},
  );
  expect(code).toBe(2);
  const line = err.find((l) => l.includes('cannot connect'));
  expect(line).toBeDefined();
  expect(line!.match(/cannot connect to/g)).toHaveLength(1);
  expect(line).toContain('nothing is listening there: start Redis (redis-server)');
});

describe.runIf(up.postgres)('a PostgreSQL URL without a user', () => {
  const saved = process.env.PGUSER;
  afterEach(() => {
    if (saved === undefined) delete process.env.PGUSER;
    else process.env.PGUSER = saved;
  });

  /** The role the transport's session (found by its application_name) logged in as. */
  async function sessionUser(clientName: string): Promise<string | undefined> {
    const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
    await admin.connect();
    try {
      const r = await admin.query<{ usename: string }>(
        'SELECT usename FROM pg_stat_activity WHERE application_name = $1 LIMIT 1',
        [`coalmine ${clientName}`],
      );
      return r.rows[0]?.usename;
    } finally {
      await admin.end();
    }
  }

  async function roleExists(name: string): Promise<boolean> {
    const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
    await admin.connect();
    try {
      return (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1;
    } finally {
      await admin.end();
    }
  }

  it('connects as PGUSER', async () => {
    process.env.PGUSER = 'postgres';
    const name = `pguser-${process.pid}`;
    const t = await createTransport('postgres://127.0.0.1:5432/test', { clientName: name });
    opened.push(t);
    await t.connect(AbortSignal.timeout(10_000));
    expect(await sessionUser(name)).toBe('postgres');
  });

  it('connects as the operating system user when PGUSER is unset', async (ctx) => {
    delete process.env.PGUSER;
    const os = userInfo().username;
    if (!(await roleExists(os))) ctx.skip(); // libpq would fail here too: no role for this OS user
    const name = `osuser-${process.pid}`;
    const t = await createTransport('postgres://127.0.0.1:5432/test', { clientName: name });
    opened.push(t);
    await t.connect(AbortSignal.timeout(10_000));
    expect(await sessionUser(name)).toBe(os);
  });
});

it('a Kafka connect that fails leaves no listener on its signal', async () => {
  const t = await createTransport(`kafka://127.0.0.1:${await freePort()}`);
  opened.push(t);
  const ac = new AbortController();
  await expect(t.connect(ac.signal)).rejects.toThrow(/nothing is listening there/);
  expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
});
