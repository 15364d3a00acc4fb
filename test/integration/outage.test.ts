import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Canary } from '../../src/messaging/canary.js';
import { Coalminer } from '../../src/messaging/coalminer.js';
import { addCounts, emptyCounts } from '../../src/messaging/sequence.js';
import { createTransport } from '../../src/transports/registry.js';
import type { Transport } from '../../src/transports/transport.js';
import { startRelay, type Relay } from '../../src/transports/websocket/relay.js';
import { until } from '../support/async.js';
import { tempDir } from '../support/brokers.js';
import { freePort } from '../support/net.js';
import { haveCommand } from '../support/require.js';
import { serviceReachable } from '../support/services.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

/**
 * A broker outage longer than the canary's lease in the middle of a run, for every transport: the agent's
 * canary and coalminer stay up, reconnect within 5 s of the broker's return, the coalminer keeps its one
 * flow (a lease does not run out while the transport is down), and every ping is accounted for: received,
 * lost in the outage, or a send error the canary reported (issue 9, item 5: before, the lease ran out,
 * the canary pinged from seq 0 again under the same run id, and refused publishes read as arrived).
 */
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

const LEASE_MS = 2000;
/** From cutting the broker off to letting it back: well past the lease. */
const OUTAGE_MS = 5000;
const RATE = 100;

/** How a case's broker is reached and cut off. */
interface Link {
  url: string;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

interface Case {
  name: string;
  /** Whether the broker is there (skips with how to start it, fails in CI). */
  available(): Promise<boolean>;
  link(): Promise<Link>;
  /** Delivers at least once: what was unacknowledged when the link dropped may come again. */
  atLeastOnce?: boolean;
  /** How long the test may take; a broker restart takes longer than a proxy. */
  timeoutMs?: number;
}

let relay: Relay;

/** The broker behind a TCP proxy of the test's own: down() drops every connection and refuses new ones. */
function proxied(
  name: string,
  port: number | (() => number),
  how: string,
  url: (p: number) => string,
  atLeastOnce = false,
): Case {
  const target = () => (typeof port === 'number' ? port : port());
  return {
    name,
    atLeastOnce,
    available: () => serviceReachable('127.0.0.1', target(), `start it: ${how}`),
    link: async () => {
      const proxy = await startTcpProxy({ host: '127.0.0.1', port: target() });
      return {
        url: url(proxy.port),
        down: async () => proxy.down(),
        up: async () => proxy.up(),
        close: () => proxy.close(),
      };
    },
  };
}

/**
 * Kafka's clients connect to the address the broker advertises, not to a proxy in front of it: the
 * outage is a private broker (scripts/kafka.sh, its own ports and data dir) stopped and started again.
 */
const kafka: Case = {
  name: 'kafka',
  timeoutMs: 240_000,
  available: async () =>
    (await serviceReachable('127.0.0.1', 9092, 'Kafka is not running: bash scripts/kafka.sh start')) &&
    haveCommand('java', 'install a Java 17 runtime (apt-get install openjdk-17-jre-headless)'),
  link: async () => {
    const run = promisify(execFile);
    const script = join(import.meta.dirname, '../../scripts/kafka.sh');
    const dir = await tempDir('coalmine-outage-kafka-');
    const [port, controllerPort] = [await freePort(), await freePort()];
    const env = {
      ...process.env,
      KAFKA_DIR: dir.path,
      KAFKA_PORT: String(port),
      KAFKA_CONTROLLER_PORT: String(controllerPort),
    };
    const broker = async (cmd: 'start' | 'stop') => {
      await run('bash', [script, cmd], { env, timeout: 150_000 });
    };
    await broker('start');
    return {
      url: `kafka://127.0.0.1:${port}`,
      down: () => broker('stop'),
      up: () => broker('start'),
      close: async () => {
        await broker('stop').catch(() => undefined);
        await dir.remove();
      },
    };
  },
};

const cases: Case[] = [
  proxied('redis', 6379, 'redis-server --daemonize yes', (p) => `redis://127.0.0.1:${p}`),
  proxied('redis+stream', 6379, 'redis-server --daemonize yes', (p) => `redis+stream://127.0.0.1:${p}`, true),
  proxied('amqp', 5672, 'rabbitmq-server -detached', (p) => `amqp://guest:guest@127.0.0.1:${p}`),
  proxied('mqtt', 1883, 'mosquitto -d', (p) => `mqtt://127.0.0.1:${p}?qos=1`),
  proxied('nats', 4222, 'nats-server -js', (p) => `nats://127.0.0.1:${p}`),
  proxied('nats+jetstream', 4222, 'nats-server -js', (p) => `nats+jetstream://127.0.0.1:${p}`, true),
  proxied('postgres', 5432, 'pg_ctlcluster 15 main start', (p) => `postgres://postgres@127.0.0.1:${p}/test`),
  proxied(
    'websocket',
    () => relay.port,
    '(embedded relay)',
    (p) => `ws://127.0.0.1:${p}`,
  ),
  kafka,
];

// Concurrently: each case waits on its own broker most of the time, and one after another would take minutes.
describe.concurrent('broker outage longer than the lease, mid-run', () => {
  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    relay = await startRelay({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await relay.close();
    expect(unhandled).toEqual([]);
  });

  for (const c of cases) {
    it(
      `${c.name}: keeps its flow through the outage, reconnects within 5 s and accounts for every ping`,
      async () => {
        if (!(await c.available())) return;
        const link = await c.link();
        const prefix = `outage${process.pid}${c.name.replace(/\W/g, '')}`;
        const transports: Transport[] = [];
        const open = async (client: string) => {
          const t = await createTransport(link.url, {
            clientName: `${prefix}-${client}`,
            reconnect: { initialMs: 100, maxMs: 1000 },
          });
          transports.push(t);
          await t.connect(AbortSignal.timeout(15_000));
          return t;
        };
        try {
          const pub = await open('canary');
          const sub = await open('coalminer');
          const canary = new Canary({
            name: 'outage-canary',
            prefix,
            transport: pub,
            ratePerSecond: RATE,
            leaseMs: LEASE_MS,
          });
          const coalminer = new Coalminer({
            name: 'outage-coalminer',
            prefix,
            transport: sub,
            register: ['outage-canary'],
            leaseMs: LEASE_MS,
            sequence: { lossTimeoutMs: 1500 },
          });
          await canary.start();
          await coalminer.start();
          await until(() => coalminer.isConfirmedBy('outage-canary'), 'registration', 15_000, 20);
          // Each flow (run) of the canary's to this coalminer, summed: a lease that ran out would start another.
          const counts = () =>
            coalminer.flowCounts().reduce((sum, f) => addCounts(sum, f.counts), emptyCounts());
          await until(() => counts().received >= RATE / 2, 'pings flowing', 15_000, 20);

          const cutAt = Date.now();
          await link.down();
          await until(() => pub.state !== 'connected', 'the canary to see the outage', 15_000, 20);
          const left = OUTAGE_MS - (Date.now() - cutAt);
          if (left > 0) await sleep(left);
          await link.up();
          // Until the broker answers again (a Kafka restart takes its start-up time on top).
          const outageMs = Date.now() - cutAt;
          const reconnectMs = await until(
            () => pub.state === 'connected' && sub.state === 'connected',
            'both transports connected',
            5000,
            20,
          );
          // Subscriptions are re-established after the connection: give traffic a moment to flow again.
          const before = counts().received;
          const attemptedBefore = canary.stats().get('outage-coalminer')?.attempted ?? 0;
          await until(() => counts().received > before + 50, 'pings flowing again', 15_000, 20).catch(
            (err: Error) => {
              // Say which side stalled: the canary not sending, its publishes failing, or the coalminer not reading.
              const state = {
                pub: pub.state,
                sub: sub.state,
                canaryCoalminers: canary.coalminers(),
                attemptedSince: (canary.stats().get('outage-coalminer')?.attempted ?? 0) - attemptedBefore,
                canaryStats: canary.stats().get('outage-coalminer'),
                receivedSince: counts().received - before,
              };
              throw new Error(`${err.message}: ${JSON.stringify(state)}`);
            },
          );
          await canary.stop();
          const sent = canary.stats().get('outage-coalminer')!;
          // Every ping has arrived or has been declared lost once the coalminer has reached the last one.
          await until(
            () => counts().expected === sent.attempted && counts().inFlight === 0,
            'the coalminer to judge every ping',
            10_000,
            50,
          ).catch(() => undefined);
          coalminer.tick();
          await coalminer.stop();
          const got = counts();
          const detail = JSON.stringify({
            sent,
            got,
            runs: coalminer.flowCounts().length,
            outageMs,
            reconnectMs,
          });
          console.log(`outage ${c.name}: ${detail}`);
          expect(outageMs, detail).toBeGreaterThan(LEASE_MS);
          expect(reconnectMs, detail).toBeLessThan(5000);
          // The lease did not run out while the transport was down: one run, its seq never restarted.
          expect(sent.runs, detail).toBe(1);
          expect(coalminer.flowCounts(), detail).toHaveLength(1);
          expect(sent.pending, detail).toBe(0);
          // Every ping the canary attempted is known to the coalminer, in exactly one state.
          expect(got.expected, detail).toBe(sent.attempted);
          expect(got.received + got.lost + got.sendFailed + got.inFlight, detail).toBe(got.expected);
          expect(got.inFlight, detail).toBe(0);
          // What the canary could not publish is a send error, not loss; what it published arrived or was lost.
          // One exception: a publish in flight when the link dropped may have reached the broker before its
          // reply was lost. The canary counts it failed (its client said so), the coalminer counts it
          // received (it arrived), and it moves from one side of the balance to the other, never vanishing.
          // Seen in CI on redis+stream: an XADD that Redis had executed when the proxy cut the connection.
          const inDoubtArrived = sent.failed - got.sendFailed;
          expect(inDoubtArrived, detail).toBeGreaterThanOrEqual(0);
          // …and the coalminer says how many: coalmine_messages_send_failed_arrived_total.
          expect(got.sendFailedArrived, detail).toBe(inDoubtArrived);
          // sent = received + lost (+ in flight, 0 by now), the in-doubt publishes moved across.
          expect(got.received + got.lost - inDoubtArrived, detail).toBe(sent.sent);
          // Only what was in flight at the moment of the cut can be in doubt: at 100/s, a handful. Publishes
          // refused during the outage (issue 9 counted 1,489 of them as arrived) never are.
          expect(inDoubtArrived, detail).toBeLessThanOrEqual(20);
          // Redeliveries are counted as duplicates, never as received twice (checked above); only an
          // at-least-once system may produce them.
          if (!c.atLeastOnce) expect(got.duplicated, detail).toBe(0);
          // The outage was real: something failed or was lost during it.
          expect(sent.failed + got.lost, detail).toBeGreaterThan(0);
        } finally {
          await Promise.all(transports.map((t) => t.close()));
          await link.close();
        }
      },
      c.timeoutMs ?? 60_000,
    );
  }
});
