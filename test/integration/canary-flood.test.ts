import { afterAll, describe, expect, it } from 'vitest';
import { Canary } from '../../src/messaging/canary.js';
import { canaryChannel } from '../../src/messaging/channels.js';
import { Coalminer } from '../../src/messaging/coalminer.js';
import { encode } from '../../src/messaging/envelope.js';
import { create } from '../../src/transports/redis/index.js';
import type { Transport } from '../../src/transports/transport.js';
import { until } from '../support/async.js';
import { REDIS, redisReachable } from '../support/services.js';

const redisUp = await redisReachable();

/**
 * Issue 9, item 4: 300 forged registrations made a canary send 30,000 extra pings a second. Now it pings
 * at most maxCoalminers coalminers, refuses and counts the rest, and the real coalminer's flow stays exact.
 */
describe.skipIf(!redisUp)('a canary flooded with forged registrations, through real Redis', () => {
  const opened: Transport[] = [];
  const open = async () => {
    const t = create(`redis://${REDIS.host}:${REDIS.port}`);
    opened.push(t);
    await t.connect(AbortSignal.timeout(10_000));
    return t;
  };
  afterAll(async () => {
    await Promise.all(opened.map((t) => t.close()));
  });

  it('pings at most maxCoalminers coalminers, counts the refusals, and keeps the real flow exact', async () => {
    const prefix = `flood${process.pid}`;
    const rate = 100;
    const max = 20;
    /** Every coalminer the canary reported on: the label sets it would leave in /metrics. */
    const reported = new Set<string>();
    const canary = new Canary({
      name: 'flooded',
      prefix,
      transport: await open(),
      ratePerSecond: rate,
      maxCoalminers: max,
      observer: { sent: (c) => reported.add(c), sendError: (c) => reported.add(c) },
    });
    const coalminer = new Coalminer({
      name: 'real',
      prefix,
      transport: await open(),
      register: ['flooded'],
      sequence: { lossTimeoutMs: 1000 },
    });
    const forger = await open();
    await canary.start();
    await coalminer.start();
    await until(() => coalminer.isConfirmedBy('flooded'), 'registration', 10_000, 20);

    const attempted = () => [...canary.stats().values()].reduce((n, s) => n + s.attempted, 0);
    const t0 = performance.now();
    const attempted0 = attempted();
    for (let i = 0; i < 300; i++)
      await forger.publish(
        canaryChannel(prefix, 'flooded'),
        encode(
          {
            type: 'register',
            canary: 'flooded',
            coalminer: `forged-${i}`,
            runId: 0n,
            seq: 0n,
            intendedNs: 0n,
            sentNs: 0n,
          },
          false,
        ),
      );
    // The real coalminer holds one place; 19 forged names take the rest and 281 are refused.
    await until(() => canary.refused().limit === 300 - (max - 1), 'the forged registrations handled', 10_000);
    expect(canary.coalminers()).toHaveLength(max);
    expect(canary.refused()).toEqual({ limit: 300 - (max - 1) });
    const received = () => coalminer.flowCounts().reduce((n, f) => n + f.counts.received, 0);
    const before = received();
    await until(() => received() >= before + 2 * rate, 'two seconds of pings to the real coalminer', 15_000);
    // Open loop: a flow attempts one ping per interval that fell due, so all flows together attempt at most
    // maxCoalminers x rate a second (before the fix: 301 flows, 30,100 a second).
    const elapsedS = (performance.now() - t0) / 1000;
    expect(attempted() - attempted0).toBeLessThanOrEqual(max * (rate * elapsedS + 2));
    expect(reported.size).toBeLessThanOrEqual(max);

    await canary.stop();
    const sent = canary.stats().get('real')!;
    await until(() => received() === sent.sent, 'every ping the canary sent to arrive', 10_000);
    coalminer.tick();
    const flows = coalminer.flowCounts();
    expect(flows).toHaveLength(1);
    const detail = JSON.stringify({ sent, got: flows[0]!.counts });
    expect(sent.pending, detail).toBe(0);
    expect(sent.failed, detail).toBe(0);
    expect(flows[0]!.counts, detail).toMatchObject({
      expected: sent.attempted,
      received: sent.sent,
      lost: 0,
      inFlight: 0,
      duplicated: 0,
      sendFailedArrived: 0,
    });
    await coalminer.stop();
  }, 40_000);
});
