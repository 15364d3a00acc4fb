import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { deliveringButFailing, dropping } from '../../test/support/lossy.js';
import { MessagingMetrics } from '../sinks/prometheus/messaging-metrics.js';
import { describe, expect, it } from 'vitest';
import { wallClockNs } from '../transports/base.js';
import { MemoryTransport } from '../transports/memory/index.js';
import { TransportError, type Delivery, type PublishReceipt } from '../transports/transport.js';
import { Canary } from './canary.js';
import { Coalminer } from './coalminer.js';
import { decode, encode } from './envelope.js';

let bus = 0;
const memory = () => new MemoryTransport(`memory://pair-${++bus}`);

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('canary and coalminers over the memory transport', () => {
  it('registers, pings two coalminers, and accounts for every ping', async () => {
    const t = memory();
    await t.connect();
    const canary = new Canary({ name: 'c1', transport: t, ratePerSecond: 500 });
    const eu = new Coalminer({ name: 'eu', transport: t, register: ['c1'], region: 'eu' });
    const us = new Coalminer({ name: 'us', transport: t, register: ['c1'], region: 'us' });
    await canary.start();
    await Promise.all([eu.start(), us.start()]);
    await until('both registered', () => eu.isConfirmedBy('c1') && us.isConfirmedBy('c1'));
    await sleep(1000);
    await canary.stop();
    await sleep(50);
    for (const c of [eu, us]) {
      c.tick();
      const [report] = c.reports();
      const sent = canary.stats().get(c.name)!;
      expect(sent.failed).toBe(0);
      expect(sent.sent).toBeGreaterThan(400);
      expect(report!.counts).toMatchObject({ received: sent.sent, lost: 0, duplicated: 0, inFlight: 0 });
      expect(report!.counts.expected).toBe(sent.attempted);
      expect(report!.latency.p50).toBeGreaterThan(0);
      expect(report!.latency.p99).toBeLessThan(0.05);
      await c.stop();
    }
    await t.close();
  });

  it('stops pinging a coalminer that unregisters', async () => {
    const t = memory();
    await t.connect();
    const canary = new Canary({ name: 'c8', transport: t, ratePerSecond: 50 });
    const m = new Coalminer({ name: 'leaver', transport: t, register: ['c8'] });
    await canary.start();
    await m.start();
    await until('registered', () => canary.coalminers().includes('leaver'));
    await m.stop();
    await until('unregistered', () => canary.coalminers().length === 0);
    await canary.stop();
  });

  it('reports exactly the pings a lossy path dropped as lost', async () => {
    const t = memory();
    await t.connect();
    const dropped = new Set([5, 6, 7, 50, 99, 150]);
    const canary = new Canary({
      name: 'c2',
      transport: dropping(t, (s) => dropped.has(s)),
      ratePerSecond: 200,
      coalminers: ['m'],
    });
    const m = new Coalminer({
      name: 'm',
      transport: t,
      register: [],
      accept: ['c2'],
      sequence: { lossTimeoutMs: 200 },
    });
    await m.start();
    await canary.start();
    await until('200 pings', () => (canary.stats().get('m')?.attempted ?? 0) >= 200, 5000);
    await canary.stop();
    await sleep(400);
    m.tick();
    const c = m.reports()[0]!.counts;
    expect(c.lost).toBe([...dropped].filter((s) => s < c.expected).length);
    expect(c.received + c.lost).toBe(c.expected);
    expect(c.duplicated + c.reordered).toBe(0);
    await m.stop();
  });

  it('counts publishes that failed during an outage as send errors, not loss', async () => {
    const t = memory();
    await t.connect();
    const canary = new Canary({ name: 'c3', transport: t, ratePerSecond: 200, coalminers: ['m'] });
    const m = new Coalminer({
      name: 'm',
      transport: t,
      register: [],
      accept: ['c3'],
      sequence: { lossTimeoutMs: 200 },
    });
    await m.start();
    await canary.start();
    await sleep(300);
    t.setDown(true);
    await sleep(300);
    t.setDown(false);
    await sleep(500);
    await canary.stop();
    await sleep(300);
    m.tick();
    const s = canary.stats().get('m')!;
    const c = m.reports()[0]!.counts;
    expect(s.errors.not_connected).toBeGreaterThan(30);
    expect(c.sendFailed).toBe(s.failed);
    expect(c.lost).toBe(0);
    expect(c.received).toBe(s.sent);
    expect(c.expected).toBe(s.attempted);
    await m.stop();
  });

  it('counts a publish reported failed that arrived anyway as received, and says how many', async () => {
    const t = memory();
    await t.connect();
    const picked = new Set<number>();
    const inDoubt = (seq: number) => seq % 10 === 3 && picked.add(seq).size > 0;
    const canary = new Canary({
      name: 'c9',
      transport: deliveringButFailing(t, inDoubt),
      ratePerSecond: 200,
      coalminers: ['m'],
    });
    const registry = new Registry();
    const metrics = new MessagingMetrics(registry, [0.01, 0.1, 1]);
    const m = new Coalminer({
      name: 'm',
      transport: t,
      register: [],
      accept: ['c9'],
      observer: metrics.coalminerObserver('m', 'memory', 'r'),
    });
    await m.start();
    await canary.start();
    await sleep(600);
    await canary.stop();
    await sleep(100);
    m.tick();
    const s = canary.stats().get('m')!;
    const c = m.reports()[0]!.counts;
    expect(picked.size).toBeGreaterThan(5);
    expect(s.failed).toBe(picked.size); // the canary saw errors…
    // …for pings that arrived: received, not send-failed, and counted as in doubt.
    expect(c).toMatchObject({
      expected: s.attempted,
      received: s.attempted,
      sendFailed: 0,
      sendFailedArrived: picked.size,
      lost: 0,
    });
    expect(await registry.getSingleMetricAsString('coalmine_messages_send_failed_arrived_total')).toContain(
      `coalmine_messages_send_failed_arrived_total{canary="c9",coalminer="m",transport="memory",region="r"} ${picked.size}`,
    );
    await m.stop();
  });

  it('announces publishes that failed after its last ping when it stops, so they are not loss', async () => {
    const t = memory();
    await t.connect();
    // Seq 20's acknowledgement times out only after the canary has stopped: no later ping carries the news.
    const failing = new Proxy(t, {
      get(target, prop, receiver) {
        if (prop === 'publish') {
          return async (channel: string, payload: Uint8Array): Promise<PublishReceipt> => {
            const e = decode(payload);
            if (e.type === 'ping' && e.seq === 20n) {
              await sleep(300);
              throw new TransportError('timeout', 'no ack');
            }
            return target.publish(channel, payload);
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const canary = new Canary({ name: 'c10', transport: failing, ratePerSecond: 200, coalminers: ['m'] });
    const m = new Coalminer({
      name: 'm',
      transport: t,
      register: [],
      accept: ['c10'],
      sequence: { lossTimeoutMs: 100 },
    });
    await m.start();
    await canary.start();
    await until('pings past 20', () => (canary.stats().get('m')?.attempted ?? 0) >= 25);
    await canary.stop();
    await sleep(300);
    m.tick();
    const s = canary.stats().get('m')!;
    const c = m.reports()[0]!.counts;
    expect(s.failed).toBe(1);
    expect(c.sendFailed).toBe(1);
    expect(c.lost).toBe(0);
    expect(c.received).toBe(s.sent);
    await m.stop();
  });

  it('treats a canary restart as a new run, not a burst of loss', async () => {
    const t = memory();
    await t.connect();
    const m = new Coalminer({
      name: 'm',
      transport: t,
      register: ['c4'],
      leaseMs: 600,
      sequence: { lossTimeoutMs: 100 },
    });
    const first = new Canary({ name: 'c4', transport: t, ratePerSecond: 100 });
    await first.start();
    await m.start();
    await until('registered', () => m.isConfirmedBy('c4'));
    await sleep(300);
    await first.stop();
    const second = new Canary({ name: 'c4', transport: t, ratePerSecond: 100 });
    await second.start();
    // The coalminer re-registers on its lease timer; the new run then pings it.
    await until(
      'second run pings',
      () => m.reports().length === 2 && m.reports()[1]!.counts.received > 10,
      3000,
    );
    await second.stop();
    await sleep(200);
    m.tick();
    for (const r of m.reports()) expect(r.counts.lost).toBe(0);
    expect(new Set(m.reports().map((r) => r.runId)).size).toBe(2);
    await m.stop();
  });

  it('picks up where it left off when a coalminer restarts and registers again', async () => {
    const t = memory();
    await t.connect();
    const canary = new Canary({ name: 'c9', transport: t, ratePerSecond: 100 });
    await canary.start();
    const first = new Coalminer({
      name: 'phoenix',
      transport: t,
      register: ['c9'],
      sequence: { lossTimeoutMs: 100 },
    });
    await first.start();
    await until('first registered', () => first.isConfirmedBy('c9'));
    await sleep(300);
    // Dies without unregistering; its replacement registers under the same name.
    (first as unknown as { abort: AbortController }).abort.abort();
    (first as unknown as { timers: NodeJS.Timeout[] }).timers.forEach((x) => clearInterval(x));
    await sleep(200);
    const second = new Coalminer({
      name: 'phoenix',
      transport: t,
      register: ['c9'],
      sequence: { lossTimeoutMs: 100 },
    });
    await second.start();
    await until('second registered', () => second.isConfirmedBy('c9'));
    await sleep(300);
    await canary.stop();
    await sleep(200);
    second.tick();
    const c = second.reports()[0]!.counts;
    // Pings sent while nobody listened belong to no coalminer process: the new one starts at the confirm.
    expect(c.received).toBeGreaterThan(20);
    expect(c.lost).toBe(0);
    expect(c.stale).toBeLessThanOrEqual(1);
    await second.stop();
  });

  it('stops pinging a coalminer that disappears once its lease expires', async () => {
    const t = memory();
    await t.connect();
    const canary = new Canary({ name: 'c5', transport: t, ratePerSecond: 50, leaseMs: 300 });
    const m = new Coalminer({ name: 'gone', transport: t, register: ['c5'], leaseMs: 300 });
    await canary.start();
    await m.start();
    await until('registered', () => canary.coalminers().includes('gone'));
    // Vanish without unregistering: stop renewing and stop listening.
    (m as unknown as { timers: NodeJS.Timeout[] }).timers.forEach((x) => clearInterval(x));
    await until('lease expired', () => !canary.coalminers().includes('gone'), 2000);
    await canary.stop();
    await t.close();
  });

  it('corrects a skewed canary clock to within the reported bound', async () => {
    const t = memory();
    await t.connect();
    const skewNs = 3_000_000_000n; // the canary's host clock is 3 s ahead: its transport stamps with it too
    const skewed = () => wallClockNs() + skewNs;
    const canaryT = new MemoryTransport(t.displayUrl, { wallNs: skewed });
    await canaryT.connect();
    const canary = new Canary({ name: 'c6', transport: canaryT, ratePerSecond: 100, wallNs: skewed });
    const m = new Coalminer({ name: 'm', transport: t, register: ['c6'], clockSyncIntervalMs: 100 });
    await canary.start();
    await m.start();
    await until('clock estimate', () => (m.clockEstimate('c6')?.samples ?? 0) >= 5);
    const est = m.clockEstimate('c6')!;
    expect(Math.abs(est.offsetNs - Number(skewNs))).toBeLessThanOrEqual(est.errorNs);
    await sleep(300);
    const lat = m.window('c6', 60_000);
    // Uncorrected, every latency would read -3 s (clamped to 0); corrected they are small and positive.
    expect(lat.percentile(50) / 1e9).toBeGreaterThan(0);
    expect(lat.percentile(50) / 1e9).toBeLessThan(0.05);
    await canary.stop();
    await m.stop();
  });

  it('answers echoes so the canary measures round trips on its own clock', async () => {
    const t = memory();
    await t.connect();
    const rtts: number[] = [];
    const canary = new Canary({
      name: 'c7',
      transport: t,
      ratePerSecond: 100,
      echo: true,
      observer: { rtt: (_c, s) => rtts.push(s) },
    });
    const m = new Coalminer({ name: 'm', transport: t, register: ['c7'] });
    await canary.start();
    await m.start();
    await until('echoes', () => rtts.length >= 20);
    expect(Math.max(...rtts)).toBeLessThan(0.1);
    expect(Math.min(...rtts)).toBeGreaterThan(0);
    await canary.stop();
    await m.stop();
  });

  it('counts undecodable traffic on its channel as foreign and carries on', async () => {
    const t = memory();
    await t.connect();
    const m = new Coalminer({ name: 'm', transport: t, register: [] });
    await m.start();
    for (const junk of ['hello', '{"x":1}', 'cm1 zz'])
      await t.publish('coalmine.coalminer.m', new TextEncoder().encode(junk));
    await until('foreign', () => m.foreign === 3);
    await m.stop();
    void (undefined as unknown as Delivery);
  });

  it('with a shared secret, signs everything and refuses unsigned control messages', async () => {
    const t = memory();
    await t.connect();
    const secret = 'a secret of sixteen+ characters';
    const canary = new Canary({ name: 'cs', transport: t, ratePerSecond: 200, secret });
    const m = new Coalminer({ name: 'm', transport: t, register: ['cs'], secret });
    const outsider = new Coalminer({ name: 'outsider', transport: t, register: ['cs'] });
    await canary.start();
    await Promise.all([m.start(), outsider.start()]);
    await until('registered', () => m.isConfirmedBy('cs'));
    // Neither an unsigned registration nor a forged unsigned unregister of the real coalminer is taken.
    const now = wallClockNs();
    const forged = { canary: 'cs', runId: 0n, seq: 0n, intendedNs: now, sentNs: now };
    await t.publish('coalmine.canary.cs', encode({ ...forged, type: 'unregister', coalminer: 'm' }, false));
    await t.publish('coalmine.canary.cs', encode({ ...forged, type: 'register', coalminer: 'x' }, false));
    await sleep(500);
    await canary.stop();
    await sleep(50);
    m.tick();
    expect(canary.coalminers()).toEqual(['m']);
    expect(canary.refused()).toMatchObject({ unsigned: expect.any(Number) as number });
    expect(canary.controlErrors.unsigned).toBeGreaterThanOrEqual(1);
    const sent = canary.stats().get('m')!;
    const [report] = m.reports();
    expect(report!.counts).toMatchObject({ expected: sent.attempted, received: sent.sent, lost: 0 });
    expect(m.foreign).toBe(0);
    // The coalminer without the secret was never pinged.
    expect(outsider.flowCount()).toBe(0);
    await Promise.all([m.stop(), outsider.stop()]);
  });

  it("counts the pings a coalminer never saw after the last one that arrived, from the canary's last word", async () => {
    const t = memory();
    await t.connect();
    let blackhole = false;
    // Pings published but never delivered (a pub/sub broker with nobody subscribed), then the canary stops.
    const canary = new Canary({
      name: 'ct',
      transport: dropping(t, () => blackhole),
      ratePerSecond: 200,
      coalminers: ['m'],
    });
    const m = new Coalminer({
      name: 'm',
      transport: t,
      register: [],
      accept: ['ct'],
      sequence: { lossTimeoutMs: 100 },
    });
    await m.start();
    await canary.start();
    await until('100 pings', () => (canary.stats().get('m')?.attempted ?? 0) >= 100);
    blackhole = true;
    const attempted = canary.stats().get('m')!.attempted;
    await until('50 more', () => canary.stats().get('m')!.attempted >= attempted + 50);
    await canary.stop();
    await sleep(300);
    m.tick();
    const s = canary.stats().get('m')!;
    const c = m.reports()[0]!.counts;
    expect(c.expected).toBe(s.attempted);
    expect(c.received + c.lost).toBe(s.sent);
    expect(c.lost).toBeGreaterThanOrEqual(50);
    expect(c.inFlight).toBe(0);
    await m.stop();
  });
});
