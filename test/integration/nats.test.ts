import { randomBytes } from 'node:crypto';
import { connect as natsConnect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create } from '../../src/transports/nats/index.js';
import { sleep, take } from '../support/async.js';
import { BrokerProcess, tempDir, type TempDir } from '../support/brokers.js';
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

const HOST = '127.0.0.1';
const PORT = 4222;
const reachable = await serviceReachable(
  HOST,
  PORT,
  'start nats-server with JetStream on 127.0.0.1:4222 (`nats-server -js`)',
);
const CORE = `nats://${HOST}:${PORT}`;
// A stream of the tests' own, deleted afterwards. Channels another stream on the shared server already
// captures (say a COALMINE stream with coalmine.>) are consumed from that stream instead.
const STREAM = `COALMINE_TEST_${randomBytes(3).toString('hex')}`;
const JS = `nats+jetstream://${HOST}:${PORT}?stream=${STREAM}&maxMsgs=10000`;

async function deleteStream(port: number, name: string): Promise<void> {
  const nc = await natsConnect({ servers: `${HOST}:${port}` });
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(name).catch(() => {});
  } finally {
    await nc.close();
  }
}

describe.skipIf(!reachable)('nats against nats-server', () => {
  afterAll(() => deleteStream(PORT, STREAM));

  transportConformance('nats (core)', { make: () => create(CORE), acks: false, settleMs: 100 });
  transportConformance('nats (core, flush=true)', {
    make: () => create(`${CORE}?flush=true`),
    acks: true,
    settleMs: 100,
    bulk: 200,
  });
  transportConformance('nats+jetstream', { make: () => create(JS), acks: true, settleMs: 200 });

  describe('what is special to NATS', () => {
    it('core publish is fire-and-forget: no ackNs', async () => {
      const t = create(CORE);
      await t.connect(AbortSignal.timeout(5000));
      const receipt = await t.publish(channelName(), text('cm1 x'));
      await t.close();
      expect(receipt.ackNs).toBeUndefined();
    });

    it('JetStream stamps brokerNs with the stream time, between send and receipt', async () => {
      const pub = create(JS);
      const sub = create(JS);
      await Promise.all([pub.connect(AbortSignal.timeout(5000)), sub.connect(AbortSignal.timeout(5000))]);
      const ch = channelName();
      const ac = new AbortController();
      const iter = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      await sleep(200);
      const before = BigInt(Date.now()) * 1_000_000n;
      const receipt = await pub.publish(ch, text('cm1 stamped'));
      const [d] = await take(iter, 1, 5000);
      ac.abort();
      await Promise.all([pub.close(), sub.close()]);
      expect(d && decode(d)).toBe('cm1 stamped');
      // One host, one clock: sent ≤ stored ≤ PubAck, and stored ≤ received; 2 ms of slack because our ns
      // clock is anchored to Date.now() (ms) while the server reads the system clock directly.
      expect(d!.brokerNs!).toBeGreaterThanOrEqual(before - 2_000_000n);
      expect(d!.brokerNs!).toBeLessThanOrEqual(receipt.ackNs! + 2_000_000n);
      expect(d!.brokerNs!).toBeLessThanOrEqual(d!.receivedNs + 2_000_000n);
    });

    it('JetStream extends the stream for a channel outside its subjects, and a subscription made before the first publish gets it', async () => {
      const t = create(JS);
      await t.connect(AbortSignal.timeout(5000));
      const ch = `other${randomBytes(3).toString('hex')}.probe`;
      const ac = new AbortController();
      const iter = t.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      // No settling: the consumer starts at the time subscribe() was called, however late it is created.
      await t.publish(ch, text('cm1 elsewhere'));
      const got = await take(iter, 1, 5000);
      ac.abort();
      await t.close();
      expect(got.map(decode)).toEqual(['cm1 elsewhere']);
    });

    it('a named JetStream coalminer resumes after a restart: nothing lost, nothing repeated', async () => {
      const clientName = `resume-${randomBytes(3).toString('hex')}`;
      // A prefix no other stream captures, so the durable consumer lives in the test stream and goes with it.
      const ch = `resume${randomBytes(3).toString('hex')}.x`;
      const pub = create(JS);
      await pub.connect(AbortSignal.timeout(5000));
      const first = create(JS, { clientName });
      await first.connect(AbortSignal.timeout(5000));
      const ac1 = new AbortController();
      const iter1 = first.subscribe(ch, ac1.signal)[Symbol.asyncIterator]();
      await sleep(200);
      for (let i = 0; i < 3; i++) await pub.publish(ch, text(`cm1 before-${i}`));
      const got1 = await take(iter1, 3, 5000);
      await sleep(100); // let the acks reach the server
      await first.close();
      // The server may still hold the closed client's pending pull request for a moment; a message handed
      // to it would only come back after ack_wait (30 s). A coalminer restart takes longer than this.
      await sleep(500);
      for (let i = 0; i < 2; i++) await pub.publish(ch, text(`cm1 while-away-${i}`));
      const second = create(JS, { clientName });
      await second.connect(AbortSignal.timeout(5000));
      const ac2 = new AbortController();
      const iter2 = second.subscribe(ch, ac2.signal)[Symbol.asyncIterator]();
      const got2 = await take(iter2, 2, 5000);
      got2.push(...(await take(iter2, 1, 500)));
      ac2.abort();
      await Promise.all([second.close(), pub.close()]);
      expect(got1.map(decode)).toEqual(['cm1 before-0', 'cm1 before-1', 'cm1 before-2']);
      expect(got2.map(decode)).toEqual(['cm1 while-away-0', 'cm1 while-away-1']);
    });

    it('rejects a failed first connect with a TransportError naming the URL and the cause', async () => {
      const port = await freePort();
      const t = create(`nats://127.0.0.1:${port}`);
      const err = await t.connect(AbortSignal.timeout(5000)).then(
        () => undefined,
        (e: unknown) => e,
      );
      await t.close();
      expectNotConnected(err, `nats://127.0.0.1:${port}`, 'ECONNREFUSED');
    });
  });
});

const haveServer = haveCommand('nats-server', 'install nats-server (apt-get install nats-server)');
describe.skipIf(!haveServer)(
  'nats: reconnect after a server restart (private nats-server, killed by PID)',
  () => {
    let dir: TempDir;
    let port: number;
    let server: BrokerProcess;

    beforeAll(async () => {
      dir = await tempDir('coalmine-nats-');
      port = await freePort();
      server = new BrokerProcess({
        name: 'nats-server to listen',
        command: 'nats-server',
        args: ['-a', HOST, '-p', String(port), '-js', '-sd', dir.path],
        ready: () => serviceUp(port),
        readyTimeoutMs: 10_000,
      });
      await server.start();
    });
    afterAll(async () => {
      await server?.kill();
      await dir?.remove();
    });

    for (const mode of ['core', 'jetstream'] as const) {
      it(`${mode}: fails publishes during the outage, reports it, and is back within 5 s with its subscription`, async () => {
        const url = mode === 'core' ? `nats://${HOST}:${port}` : `nats+jetstream://${HOST}:${port}`;
        const pub = create(url, fast);
        const sub = create(url, fast);
        await Promise.all([pub.connect(AbortSignal.timeout(5000)), sub.connect(AbortSignal.timeout(5000))]);
        const seen = recordStatus(pub);
        const ch = channelName();
        const ac = new AbortController();
        const iter = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
        await sleep(300);
        await pub.publish(ch, text('cm1 before'));
        expect((await take(iter, 1, 5000)).map(decode)).toEqual(['cm1 before']);

        await server.kill();
        await waitFor(
          'the outage to be noticed',
          async () => (pub.state === 'connected' ? undefined : true),
          5000,
        );
        const during = await pub.publish(ch, text('cm1 during')).then(
          () => undefined,
          (e: unknown) => e,
        );
        expectNotConnected(during);

        // Measured from the spawn: the server listens within a few ms, before start() sees it.
        const back = await server.start();
        await waitFor(
          'reconnect',
          async () => (pub.state === 'connected' && sub.state === 'connected' ? true : undefined),
          5000,
        );
        const reconnectMs = Date.now() - back;
        console.log(`nats ${mode}: reconnected ${reconnectMs} ms after the server was restarted`);
        expect(reconnectMs).toBeLessThan(5000);
        expectOutageAndRecovery(seen);

        // JetStream needs a moment after a restart to recover its streams: retry the first publish briefly.
        await waitFor(
          'a publish to succeed after the restart',
          () => pub.publish(ch, text('cm1 after')).then(() => true),
          10_000,
        );
        const after = await take(iter, 1, 10_000);
        ac.abort();
        await Promise.all([pub.close(), sub.close()]);
        expect(after.map(decode)).toEqual(['cm1 after']);
      }, 60_000);
    }
  },
);

function serviceUp(port: number): Promise<boolean> {
  return natsConnect({ servers: `${HOST}:${port}`, timeout: 500 }).then(
    (nc) => nc.close().then(() => true),
    () => false,
  );
}
