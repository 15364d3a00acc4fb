import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create } from '../../src/transports/mqtt/index.js';
import { TransportError, type Delivery, type Transport } from '../../src/transports/transport.js';
import { sleep, take } from '../support/async.js';
import { BrokerProcess, tempDir, type TempDir } from '../support/brokers.js';
import {
  channelName,
  decode,
  expectNotConnected,
  fastReconnect as fast,
  recordStatus,
  text,
} from '../support/transports.js';
import { freePort, waitFor } from '../support/net.js';
import { haveCommand } from '../support/require.js';
import { serviceReachable, tcpAnswers } from '../support/services.js';
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

/** The payloads of up to `n` deliveries, as text. */
async function takeText(iter: AsyncIterator<Delivery>, n: number, timeoutMs = 10_000): Promise<string[]> {
  return (await take(iter, n, timeoutMs)).map(decode);
}

/** A private Mosquitto in a temp dir, so a test can kill and restart it without touching the system one. */
class PrivateMosquitto extends BrokerProcess {
  private constructor(
    readonly port: number,
    private readonly dir: TempDir,
  ) {
    super({
      name: `mosquitto on port ${port}`,
      command: 'mosquitto',
      args: ['-c', join(dir.path, 'mosquitto.conf')],
      ready: () => tcpAnswers(HOST, port),
    });
  }

  static async create(): Promise<PrivateMosquitto> {
    const dir = await tempDir('coalmine-mosquitto-');
    const port = await freePort();
    await writeFile(
      join(dir.path, 'mosquitto.conf'),
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`,
    );
    const m = new PrivateMosquitto(port, dir);
    await m.start();
    return m;
  }

  async stop(): Promise<void> {
    await this.kill();
    await this.dir.remove();
  }
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
        const got = await takeText(iter, 1000);
        got.push(...(await takeText(iter, 1, 300)));
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
    expectNotConnected(err, `mqtt://user:***@127.0.0.1:${port}`, 'ECONNREFUSED');
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
      broker = await PrivateMosquitto.create();
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
        expect(await takeText(iter, 1, 5000)).toEqual(['cm1 before']);

        await broker.kill();
        await waitFor('disconnect noticed', async () => (t.state !== 'connected' ? true : undefined), 5000);
        const started = Date.now();
        const err = await t.publish(ch, text('cm1 during')).catch((e: unknown) => e);
        expect(Date.now() - started).toBeLessThan(1000);
        expectNotConnected(err);
        const connectAgain = t.connect(AbortSignal.timeout(15_000));
        await sleep(1500);

        const upAt = Date.now(); // from the restart, not from its port answering
        await broker.start();
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
        expect(await takeText(iter, 1, 5000)).toEqual(['cm1 after']);
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
        expectNotConnected(err);
        expect(Date.now() - started).toBeLessThan(2000);
      } finally {
        await broker.start();
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
        expect(await takeText(iter1, 1, 5000)).toEqual(['cm1 0']);
        await first.close(); // away; the broker keeps the session
        for (let i = 1; i <= 5; i++) await producer.publish(ch, text(`cm1 ${i}`));
        // Subscribe before connect: the broker delivers what it kept right after the CONNACK.
        const second = create(url);
        try {
          const iter2 = second.subscribe(ch, new AbortController().signal)[Symbol.asyncIterator]();
          await second.connect(AbortSignal.timeout(10_000));
          expect(await takeText(iter2, 5, 5000)).toEqual(['cm1 1', 'cm1 2', 'cm1 3', 'cm1 4', 'cm1 5']);
        } finally {
          await second.close();
        }
      } finally {
        await Promise.all([first.close(), producer.close()]);
      }
    });
  });
});
