import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create } from '../../src/transports/mqtt/index.js';
import {
  TransportError,
  type Delivery,
  type Transport,
  type TransportStatus,
} from '../../src/transports/transport.js';
import { freePort, waitFor } from '../support/net.js';
import { haveCommand } from '../support/require.js';
import { serviceReachable } from '../support/services.js';
import { transportConformance } from '../support/transport-conformance.js';

const HOST = '127.0.0.1';
const PORT = 1883;
const reachable = await serviceReachable(
  HOST,
  PORT,
  'start Mosquitto on 127.0.0.1:1883 with anonymous access (e.g. `mosquitto -p 1883`)',
);
const haveMosquitto = haveCommand(
  'mosquitto',
  'install Mosquitto (apt-get install mosquitto) for the restart tests',
);
const URL = `mqtt://${HOST}:${PORT}`;
const fast = { reconnect: { initialMs: 50, maxMs: 500 } };
const text = (s: string) => new TextEncoder().encode(s);
const decode = (d: Delivery) => new TextDecoder().decode(d.payload);
const channelName = () => `coalmine.test.${randomBytes(4).toString('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function take(iter: AsyncIterator<Delivery>, n: number, timeoutMs = 10_000): Promise<string[]> {
  const out: string[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n && Date.now() < deadline) {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      iter.next(),
      new Promise<'timeout'>((res) => (timer = setTimeout(() => res('timeout'), deadline - Date.now()))),
    ]);
    clearTimeout(timer);
    if (r === 'timeout' || r.done) break;
    out.push(decode(r.value));
  }
  return out;
}

function recordStatus(t: Transport): TransportStatus[] {
  const seen: TransportStatus[] = [];
  void (async () => {
    for await (const s of t.status()) seen.push(s);
  })();
  return seen;
}

/** A private Mosquitto in a temp dir, so a test can kill and restart it without touching the system one. */
class PrivateMosquitto {
  private proc: ChildProcess | undefined;
  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(): Promise<PrivateMosquitto> {
    const dir = await mkdtemp(join(tmpdir(), 'coalmine-mosquitto-'));
    const port = await freePort();
    await writeFile(
      join(dir, 'mosquitto.conf'),
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`,
    );
    const m = new PrivateMosquitto(port, dir);
    await m.up();
    return m;
  }

  async up(): Promise<void> {
    const proc = spawn('mosquitto', ['-c', join(this.dir, 'mosquitto.conf')], { stdio: 'ignore' });
    proc.on('error', () => {}); // a missing binary shows as the port never opening
    this.proc = proc;
    await waitFor(`mosquitto on port ${this.port}`, async () =>
      (await serviceReachableQuiet(this.port)) ? true : undefined,
    );
  }

  /** SIGKILL by PID: a crash, no goodbye to the clients. */
  async kill(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    process.kill(proc.pid!, 'SIGKILL');
    await exited;
  }

  /** SIGSTOP / SIGCONT: a broker that hangs with its sockets open. */
  signal(sig: 'SIGSTOP' | 'SIGCONT'): void {
    if (this.proc?.pid) process.kill(this.proc.pid, sig);
  }

  async stop(): Promise<void> {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}

async function serviceReachableQuiet(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const s = connect(port, HOST);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => (s.destroy(), resolve(false)));
  });
}

describe.skipIf(!reachable)('mqtt against Mosquitto', () => {
  transportConformance('mqtt qos=0', { make: () => create(`${URL}?qos=0`), acks: false, settleMs: 200 });
  transportConformance('mqtt qos=1', { make: () => create(`${URL}?qos=1`), acks: true, settleMs: 200 });
  transportConformance('mqtt qos=2', { make: () => create(`${URL}?qos=2`), acks: true, settleMs: 200 });
  transportConformance('mqtt 3.1.1', { make: () => create(`${URL}?version=4`), acks: true, settleMs: 200 });

  for (const qos of [0, 1, 2] as const) {
    describe(`at QoS ${qos}`, () => {
      let pub: Transport;
      let sub: Transport;
      beforeAll(async () => {
        pub = create(`${URL}?qos=${qos}`);
        sub = create(`${URL}?qos=${qos}`);
        await Promise.all([
          pub.connect(AbortSignal.timeout(10_000)),
          sub.connect(AbortSignal.timeout(10_000)),
        ]);
      });
      afterAll(() => Promise.all([pub.close(), sub.close()]));

      it('delivers 1000 messages published at once in order, each once', async () => {
        const ch = channelName();
        const ac = new AbortController();
        const iter = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
        await sleep(200);
        await Promise.all(Array.from({ length: 1000 }, (_, i) => pub.publish(ch, text(`cm1 ${i}`))));
        const got = await take(iter, 1000);
        got.push(...(await take(iter, 1, 300)));
        ac.abort();
        expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => `cm1 ${i}`));
      });

      it(
        qos === 0
          ? 'has no ackNs (QoS 0 is not acknowledged)'
          : `stamps ackNs at the ${qos === 1 ? 'PUBACK' : 'PUBCOMP'}`,
        async () => {
          const before = BigInt(Date.now()) * 1_000_000n;
          const receipt = await pub.publish(channelName(), text('cm1 ack'));
          const after = BigInt(Date.now() + 1) * 1_000_000n;
          if (qos === 0) {
            expect(receipt.ackNs).toBeUndefined();
          } else {
            expect(receipt.ackNs).toBeGreaterThanOrEqual(before - 2_000_000n);
            expect(receipt.ackNs).toBeLessThanOrEqual(after);
          }
        },
      );
    });
  }

  it('maps channel dots to topic levels', async () => {
    const t = create(URL);
    const { connect } = await import('mqtt');
    const raw = connect(URL, { reconnectPeriod: 0 });
    raw.on('error', () => {});
    try {
      await t.connect(AbortSignal.timeout(10_000));
      const id = randomBytes(4).toString('hex');
      const got = new Promise<string>((resolve) => raw.on('message', (topic) => resolve(topic)));
      await raw.subscribeAsync(`coalmine/+/${id}`, { qos: 1 });
      await t.publish(`coalmine.levels.${id}`, text('cm1 x'));
      expect(await got).toBe(`coalmine/levels/${id}`);
    } finally {
      await t.close();
      await raw.endAsync(true);
    }
  });

  it('rejects connect() with a TransportError naming the URL and what to check', async () => {
    const port = await freePort();
    const t = create(`mqtt://user:secret@127.0.0.1:${port}`);
    const err = await t.connect(AbortSignal.timeout(10_000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).code).toBe('not_connected');
    expect((err as Error).message).toContain(`mqtt://user:***@127.0.0.1:${port}`);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    expect((err as Error).message).not.toContain('secret');
    expect(t.state).toBe('disconnected');
    await t.close();
  });

  it('rejects bad URL options when created', () => {
    expect(() => create(`${URL}?qos=3`)).toThrow(/qos/);
    expect(() => create(`${URL}?clean=false`)).toThrow(/clientId/);
    expect(() => create(`${URL}?cleen=true`)).toThrow(/unknown option cleen/);
  });

  describe.skipIf(!haveMosquitto)('with a private mosquitto, killed and restarted', () => {
    let broker: PrivateMosquitto;
    beforeAll(async () => {
      broker = await PrivateMosquitto.start();
    });
    afterAll(() => broker?.stop());

    it('fails publishes while the broker is down, reconnects within 5 s of its return and resubscribes', async () => {
      const url = `mqtt://127.0.0.1:${broker.port}`;
      const t = create(url); // default backoff, as deployed
      const seen = recordStatus(t);
      try {
        await t.connect(AbortSignal.timeout(10_000));
        const ch = channelName();
        const ac = new AbortController();
        const iter = t.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
        await sleep(200);
        await t.publish(ch, text('cm1 before'));
        expect(await take(iter, 1, 5000)).toEqual(['cm1 before']);

        await broker.kill();
        await waitFor('disconnect noticed', async () => (t.state !== 'connected' ? true : undefined), 5000);
        const started = Date.now();
        const err = await t.publish(ch, text('cm1 during')).catch((e: unknown) => e);
        expect(Date.now() - started).toBeLessThan(1000);
        expect(err).toBeInstanceOf(TransportError);
        expect((err as TransportError).code).toBe('not_connected');
        const connectAgain = t.connect(AbortSignal.timeout(15_000));
        await sleep(1500);

        const upAt = Date.now(); // from the restart, not from its port answering
        await broker.up();
        await waitFor('reconnected', async () => (t.state === 'connected' ? true : undefined), 5000);
        await connectAgain; // a connect() during the outage waits for the reconnect loop
        const reconnectMs = Date.now() - upAt;
        console.log(`mqtt: reconnected ${reconnectMs} ms after the broker came back`);
        expect(reconnectMs).toBeLessThan(5000);

        // A different client publishes, so delivery proves the broker-side subscription is back.
        const other = create(url);
        try {
          await other.connect(AbortSignal.timeout(10_000));
          await other.publish(ch, text('cm1 after'));
        } finally {
          await other.close();
        }
        expect(await take(iter, 1, 5000)).toEqual(['cm1 after']);
        ac.abort();

        const types = seen.map((s) => s.type);
        const rest = types.slice(types.indexOf('connected') + 1);
        expect(rest[0]).toBe('disconnected');
        expect(rest).toContain('reconnecting');
        expect(rest.at(-1)).toBe('connected');
        expect(seen.find((s) => s.type === 'reconnecting')).toMatchObject({ attempt: 1 });
      } finally {
        await t.close();
      }
    });

    it('rejects a publish to a hung broker with timeout, and one in flight at a crash with not_connected', async () => {
      const t = create(`mqtt://127.0.0.1:${broker.port}?qos=1&keepalive=30`, fast);
      try {
        await t.connect(AbortSignal.timeout(10_000));
        broker.signal('SIGSTOP');
        let started = Date.now();
        const stalled = await t
          .publish(channelName(), text('cm1 stalled'), { timeoutMs: 300 })
          .catch((e: unknown) => e);
        expect((stalled as TransportError).code).toBe('timeout');
        expect(Date.now() - started).toBeLessThan(1000);

        // In flight when the broker dies: fails at once, not at its timeout, and is not replayed later.
        started = Date.now();
        const inflight = t
          .publish(channelName(), text('cm1 inflight'), { timeoutMs: 10_000 })
          .catch((e: unknown) => e);
        await sleep(200);
        await broker.kill();
        const err = await inflight;
        expect(err).toBeInstanceOf(TransportError);
        expect((err as TransportError).code).toBe('not_connected');
        expect(Date.now() - started).toBeLessThan(2000);
      } finally {
        await broker.up();
        await t.close();
      }
    });

    it('keeps a persistent session (clean=false): messages sent while away arrive on return', async () => {
      const url = `mqtt://127.0.0.1:${broker.port}?qos=1&clean=false&clientId=coalmine-test-${randomBytes(4).toString('hex')}`;
      const ch = channelName();
      const first = create(url);
      const producer = create(`mqtt://127.0.0.1:${broker.port}?qos=1`);
      try {
        await producer.connect(AbortSignal.timeout(10_000));
        const iter1 = first.subscribe(ch, new AbortController().signal)[Symbol.asyncIterator]();
        await first.connect(AbortSignal.timeout(10_000));
        await producer.publish(ch, text('cm1 0'));
        expect(await take(iter1, 1, 5000)).toEqual(['cm1 0']);
        await first.close(); // away; the broker keeps the session
        for (let i = 1; i <= 5; i++) await producer.publish(ch, text(`cm1 ${i}`));
        // Subscribe before connect: the broker delivers what it kept right after the CONNACK.
        const second = create(url);
        try {
          const iter2 = second.subscribe(ch, new AbortController().signal)[Symbol.asyncIterator]();
          await second.connect(AbortSignal.timeout(10_000));
          expect(await take(iter2, 5, 5000)).toEqual(['cm1 1', 'cm1 2', 'cm1 3', 'cm1 4', 'cm1 5']);
        } finally {
          await second.close();
        }
      } finally {
        await Promise.all([first.close(), producer.close()]);
      }
    });
  });
});
