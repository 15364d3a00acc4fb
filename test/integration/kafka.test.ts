import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create } from '../../src/transports/kafka/index.js';
import { TransportError, type Transport } from '../../src/transports/transport.js';
import { sleep, take } from '../support/async.js';
import { tempDir, type TempDir } from '../support/brokers.js';
import {
  channelName,
  decode,
  expectNotConnected,
  expectOutageAndRecovery,
  fastReconnect as fast,
  recordStatus,
  text,
} from '../support/transports.js';
import { freePort, waitFor } from '../support/net.js';
import { haveCommand } from '../support/require.js';
import { serviceReachable } from '../support/services.js';
import { transportConformance } from '../support/transport-conformance.js';

const URL = process.env.COALMINE_KAFKA_URL ?? 'kafka://127.0.0.1:9092';
const [HOST, PORT] = (/^kafka:\/\/([^:/,?]+):(\d+)/.exec(URL)?.slice(1) ?? ['127.0.0.1', '9092']) as [
  string,
  string,
];
const reachable = await serviceReachable(
  HOST,
  Number(PORT),
  'Kafka is not running: bash scripts/kafka.sh start',
);

const run = promisify(execFile);

describe.skipIf(!reachable)('kafka against a real broker', () => {
  // A fresh consumer group joins and gets its partition in well under a second on a local broker.
  transportConformance('kafka', { make: () => create(URL), acks: true, settleMs: 300 });

  describe('what is special to Kafka', () => {
    let pub: Transport;
    beforeAll(async () => {
      pub = create(URL);
      await pub.connect(AbortSignal.timeout(15_000));
    });
    afterAll(() => pub?.close());

    it('stamps brokerNs with the broker append time (LogAppendTime), between send and receipt', async () => {
      const sub = create(URL);
      await sub.connect(AbortSignal.timeout(10_000));
      const ch = channelName();
      const ac = new AbortController();
      const iter = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      await sleep(300);
      const before = BigInt(Date.now()) * 1_000_000n;
      const receipt = await pub.publish(ch, text('cm1 stamped'));
      const [d] = await take(iter, 1, 10_000);
      ac.abort();
      await sub.close();
      expect(d && decode(d)).toBe('cm1 stamped');
      expect(d!.brokerNs).toBeDefined();
      // Same host, so one clock: sent ≤ appended ≤ acknowledged ≤ received. 2 ms of slack: the broker stamps
      // whole ms, and our ns clock is anchored to Date.now() (ms).
      expect(d!.brokerNs!).toBeGreaterThanOrEqual(before - 2_000_000n);
      expect(d!.brokerNs!).toBeLessThanOrEqual(receipt.ackNs! + 2_000_000n);
      expect(d!.brokerNs!).toBeLessThanOrEqual(d!.receivedNs + 2_000_000n);
    });

    it('a subscription made before its topic exists gets what is published right after, with no settling', async () => {
      const sub = create(URL);
      await sub.connect(AbortSignal.timeout(10_000));
      const ch = channelName();
      const ac = new AbortController();
      const iter = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      // No wait for the group join: the first publishes race the subscriber's setup.
      for (let i = 0; i < 5; i++) await pub.publish(ch, text(`cm1 early-${i}`));
      const got = await take(iter, 5, 15_000);
      got.push(...(await take(iter, 1, 500)));
      ac.abort();
      await sub.close();
      expect(got.map(decode)).toEqual([0, 1, 2, 3, 4].map((i) => `cm1 early-${i}`));
    });

    it('acks=0 publishes without an acknowledgement time, and the message still arrives', async () => {
      const fireAndForget = create(`${URL}${URL.includes('?') ? '&' : '?'}acks=0`);
      const sub = create(URL);
      await Promise.all([
        fireAndForget.connect(AbortSignal.timeout(10_000)),
        sub.connect(AbortSignal.timeout(10_000)),
      ]);
      const ch = channelName();
      const ac = new AbortController();
      const iter = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      await sleep(300);
      // The first publish creates the topic through the admin API, so it is there before the produce.
      const receipt = await fireAndForget.publish(ch, text('cm1 no-ack'));
      const got = await take(iter, 1, 10_000);
      ac.abort();
      await Promise.all([fireAndForget.close(), sub.close()]);
      expect(receipt.ackNs).toBeUndefined();
      expect(got.map(decode)).toEqual(['cm1 no-ack']);
    });

    it('fans one channel out to every subscription of the transport', async () => {
      const sub = create(URL);
      await sub.connect(AbortSignal.timeout(10_000));
      const ch = channelName();
      const ac = new AbortController();
      const a = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      const b = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      await sleep(300);
      await pub.publish(ch, text('cm1 both'));
      const [ga, gb] = await Promise.all([take(a, 1, 10_000), take(b, 1, 10_000)]);
      ac.abort();
      await sub.close();
      expect([ga.map(decode), gb.map(decode)]).toEqual([['cm1 both'], ['cm1 both']]);
    });

    it('a named coalminer resumes from its committed offset after a restart: nothing lost, nothing repeated', async () => {
      const clientName = `resume-${randomBytes(3).toString('hex')}`;
      const ch = channelName();
      const first = create(URL, { clientName });
      await first.connect(AbortSignal.timeout(10_000));
      const ac1 = new AbortController();
      const iter1 = first.subscribe(ch, ac1.signal)[Symbol.asyncIterator]();
      await sleep(300);
      for (let i = 0; i < 3; i++) await pub.publish(ch, text(`cm1 before-${i}`));
      const got1 = await take(iter1, 3, 10_000);
      await first.close(); // commits what was delivered
      for (let i = 0; i < 2; i++) await pub.publish(ch, text(`cm1 while-away-${i}`));
      const second = create(URL, { clientName });
      await second.connect(AbortSignal.timeout(10_000));
      const ac2 = new AbortController();
      const iter2 = second.subscribe(ch, ac2.signal)[Symbol.asyncIterator]();
      const got2 = await take(iter2, 2, 15_000);
      got2.push(...(await take(iter2, 1, 500)));
      ac2.abort();
      await second.close();
      expect(got1.map(decode)).toEqual(['cm1 before-0', 'cm1 before-1', 'cm1 before-2']);
      expect(got2.map(decode)).toEqual(['cm1 while-away-0', 'cm1 while-away-1']);
    });

    it('rejects a failed first connect with a TransportError naming the URL and the cause', async () => {
      const port = await freePort();
      const t = create(`kafka://127.0.0.1:${port}`);
      const err = await t.connect(AbortSignal.timeout(10_000)).then(
        () => undefined,
        (e: unknown) => e,
      );
      await t.close();
      expectNotConnected(err, `kafka://127.0.0.1:${port}`, 'ECONNREFUSED');
    });
  });
});

// A private broker from scripts/kafka.sh on its own ports and data dir, stopped and started by PID.
const haveJava =
  reachable && haveCommand('java', 'install a Java 17 runtime (apt-get install openjdk-17-jre-headless)');
describe.skipIf(!haveJava)(
  'kafka: reconnect after a broker restart (private broker from scripts/kafka.sh)',
  () => {
    let dir: TempDir;
    let env: NodeJS.ProcessEnv;
    let url: string;
    const script = join(import.meta.dirname, '../../scripts/kafka.sh');
    const broker = (cmd: 'start' | 'stop') => run('bash', [script, cmd], { env, timeout: 150_000 });

    beforeAll(async () => {
      dir = await tempDir('coalmine-kafka-');
      const [port, controllerPort] = [await freePort(), await freePort()];
      env = {
        ...process.env,
        KAFKA_DIR: dir.path,
        KAFKA_PORT: String(port),
        KAFKA_CONTROLLER_PORT: String(controllerPort),
      };
      url = `kafka://127.0.0.1:${port}`;
      await broker('start');
    }, 180_000);
    afterAll(async () => {
      await broker('stop').catch(() => {});
      await dir?.remove();
    }, 60_000);

    it('fails publishes during the outage, reports it, and is back within 5 s with its subscription', async () => {
      const pub = create(url, fast);
      const sub = create(url, fast);
      await Promise.all([pub.connect(AbortSignal.timeout(15_000)), sub.connect(AbortSignal.timeout(15_000))]);
      const seen = recordStatus(pub);
      const ch = channelName();
      const ac = new AbortController();
      const iter = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      await sleep(500);
      await pub.publish(ch, text('cm1 before'));
      expect((await take(iter, 1, 10_000)).map(decode)).toEqual(['cm1 before']);

      await broker('stop');
      await waitFor(
        'the outage to be noticed',
        async () => (pub.state === 'connected' ? undefined : true),
        10_000,
      );
      const during = await pub.publish(ch, text('cm1 during')).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(during).toBeInstanceOf(TransportError);
      expect(['not_connected', 'timeout']).toContain((during as TransportError).code);

      await broker('start');
      const back = Date.now();
      await waitFor('reconnect', async () => (pub.state === 'connected' ? true : undefined), 5000);
      const reconnectMs = Date.now() - back;
      console.log(`kafka: publisher reconnected ${reconnectMs} ms after the broker was back`);
      expect(reconnectMs).toBeLessThan(5000);
      expectOutageAndRecovery(seen);

      // The first publish after a restart may meet a broker still loading its partitions: retry briefly.
      await waitFor(
        'a publish to succeed after the restart',
        () => pub.publish(ch, text('cm1 after')).then(() => true),
        15_000,
      );
      const after = await take(iter, 1, 20_000);
      ac.abort();
      await Promise.all([pub.close(), sub.close()]);
      expect(after.map(decode)).toEqual(['cm1 after']);
    }, 90_000);
  },
);
