import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { until } from '../../test/support/async.js';
import { MessagingMetrics } from '../sinks/prometheus/messaging-metrics.js';
import { wallClockNs } from '../transports/base.js';
import { MemoryTransport } from '../transports/memory/index.js';
import type { Delivery, Transport } from '../transports/transport.js';
import { globMatch } from './allow-list.js';
import { Canary, PRUNED, type CanaryOptions, type FlowStats } from './canary.js';
import { canaryChannel, coalminerChannel } from './channels.js';
import { Coalminer } from './coalminer.js';
import { decode, encode, type Envelope, type MessageType } from './envelope.js';

let bus = 0;

/** A fresh bus: the canary's own transport on it, and one for the test to play the coalminers with. */
async function setup(
  opts: Omit<CanaryOptions, 'name' | 'transport'> = {},
  wrap: (ct: MemoryTransport) => Transport = (ct) => ct,
) {
  const url = `memory://canary-${++bus}`;
  const ct = new MemoryTransport(url);
  const peer = new MemoryTransport(url);
  await Promise.all([ct.connect(), peer.connect()]);
  const canary = new Canary({ name: 'c', transport: wrap(ct), ...opts });
  await canary.start();
  /** A raw control message, as any party on the bus may publish it. */
  const say = (type: MessageType, coalminer: string, fields: Partial<Envelope> = {}) =>
    peer.publish(
      canaryChannel('coalmine', 'c'),
      encode(
        { type, canary: 'c', coalminer, runId: 0n, seq: 0n, intendedNs: 0n, sentNs: 0n, ...fields },
        false,
      ),
    );
  /** Every message the canary sends to `coalminer`, decoded, from now on. */
  const listen = (coalminer: string, channel = coalminerChannel('coalmine', coalminer)) => {
    const got: Envelope[] = [];
    const ac = new AbortController();
    void (async () => {
      for await (const d of peer.subscribe(channel, ac.signal)) got.push(decode(d.payload));
    })();
    return { got, stop: () => ac.abort() };
  };
  const close = async () => {
    await canary.stop();
    await Promise.all([ct.close(), peer.close()]);
  };
  return { canary, ct, peer, say, listen, close };
}

const sum = (stats: Map<string, FlowStats>, k: 'attempted' | 'sent' | 'failed') =>
  [...stats.values()].reduce((n, s) => n + s[k], 0);

describe('globMatch', () => {
  it.each([
    ['eu-*', 'eu-west-1', true],
    ['eu-*', 'eu-', true],
    ['eu-*', 'us-east', false],
    ['*-1', 'eu-west-1', true],
    ['a?c', 'abc', true],
    ['a?c', 'ac', false],
    ['*a*b*c', 'xxaybzzc', true],
    ['*a*b*c', 'xxaybzz', false],
    ['exact', 'exact', true],
    ['exact', 'exactly', false],
  ])('%s against %s: %s', (pattern, name, want) => {
    expect(globMatch(pattern, name)).toBe(want);
  });

  it('takes no exponential time on a pattern built to backtrack', () => {
    const started = performance.now();
    expect(globMatch('*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(64))).toBe(false);
    // Exponential backtracking would take hours here; the greedy match is a few thousand steps.
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('canary registrations are bounded', () => {
  it('pings at most maxCoalminers coalminers and counts the registrations it refuses', async () => {
    const { canary, say, close } = await setup({ maxCoalminers: 3, ratePerSecond: 50 });
    for (let i = 0; i < 10; i++) await say('register', `m${i}`);
    await until(() => canary.coalminers().length + (canary.refused().limit ?? 0) === 10, 'all ten handled');
    expect(canary.coalminers()).toEqual(['m0', 'm1', 'm2']);
    expect(canary.refused()).toEqual({ limit: 7 });
    // A renewal of a coalminer already pinged is no new flow: never refused.
    await say('register', 'm1');
    await say('register', 'm9');
    await until(() => canary.refused().limit === 8, 'the refusal');
    expect(canary.coalminers()).toEqual(['m0', 'm1', 'm2']);
    // Once one leaves, another may come.
    await say('unregister', 'm0');
    await say('register', 'm9');
    await until(() => canary.coalminers().includes('m9'), 'm9 registered');
    expect(canary.coalminers()).toHaveLength(3);
    await close();
  });

  it('takes only the coalminers `allow` names or matches, and pings the static ones regardless', async () => {
    const { canary, say, listen, close } = await setup({
      allow: ['eu-*', 'us-east'],
      coalminers: ['static'],
    });
    const stranger = listen('ap-1');
    const allowed = listen('eu-9');
    for (const name of ['eu-1', 'us-east', 'us-west', 'ap-1', 'eu-2']) await say('register', name);
    await until(
      () => canary.coalminers().length === 4 && canary.refused().not_allowed === 2,
      'registrations',
    );
    expect(canary.coalminers().sort()).toEqual(['eu-1', 'eu-2', 'static', 'us-east']);
    // Clock sync is answered only for names that may register: a forged request for any other name makes
    // the canary publish nothing there.
    await say('clocksync', 'ap-1', { stamps: [1n] });
    await say('clocksync', 'eu-9', { stamps: [1n] });
    await until(() => allowed.got.length === 1, 'the reply to eu-9');
    expect(allowed.got[0]).toMatchObject({ type: 'clocksync-reply', runId: 0n });
    expect(stranger.got).toEqual([]);
    stranger.stop();
    allowed.stop();
    await close();
  });

  it('with a signature check, takes signed registrations and unsigned ones only from `allow`', async () => {
    // Stands in for the shared secret's HMAC: seq 42 marks a "signed" registration.
    const isSigned = (e: Envelope) => e.seq === 42n;
    const only = await setup({ isSigned });
    await only.say('register', 'plain');
    await only.say('register', 'signed', { seq: 42n });
    await until(() => only.canary.refused().unsigned === 1 && only.canary.coalminers().length === 1, 'both');
    expect(only.canary.coalminers()).toEqual(['signed']);
    await only.close();

    const either = await setup({ isSigned, allow: ['eu-*'] });
    for (const [name, seq] of [
      ['eu-1', 0n],
      ['us-1', 0n],
      ['us-2', 42n],
    ] as const)
      await either.say('register', name, { seq });
    await until(
      () => either.canary.coalminers().length === 2 && either.canary.refused().not_allowed === 1,
      'all',
    );
    expect(either.canary.coalminers()).toEqual(['eu-1', 'us-2']);
    await either.close();
  });
});

describe('canary stats of coalminers that ended', () => {
  it('keeps the last maxCoalminers of them and sums older ones, so the totals stay exact', async () => {
    const sent = new Map<string, number>();
    const failed = new Map<string, number>();
    const pruned: string[] = [];
    const { canary, say, close } = await setup({
      maxCoalminers: 2,
      ratePerSecond: 200,
      observer: {
        sent: (c) => sent.set(c, (sent.get(c) ?? 0) + 1),
        sendError: (c, _r, n) => failed.set(c, (failed.get(c) ?? 0) + n),
        pruned: (c) => pruned.push(c),
      },
    });
    for (let i = 0; i < 8; i++) {
      const name = `m${i}`;
      await say('register', name);
      await until(() => (canary.stats().get(name)?.sent ?? 0) >= 5, `${name} pinged`);
      await say('unregister', name);
      await until(() => !canary.coalminers().includes(name), `${name} retired`);
    }
    await until(() => sum(canary.stats(), 'attempted') === sum(canary.stats(), 'sent'), 'publishes settled');
    const stats = canary.stats();
    // Two retired coalminers by name, the six before them summed.
    expect([...stats.keys()]).toEqual([PRUNED, 'm6', 'm7']);
    expect(stats.get(PRUNED)!.runs).toBe(6);
    expect(pruned).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    const observed = [...sent.values()].reduce((a, b) => a + b, 0);
    expect(sum(stats, 'sent')).toBe(observed);
    expect(sum(stats, 'failed')).toBe([...failed.values()].reduce((a, b) => a + b, 0));
    expect(sum(stats, 'attempted')).toBe(observed);
    await close();
  });
});

describe('canary control loop', () => {
  /** The canary's transport, with deliveries of the test's own slipped into its control subscription. */
  function injecting(inner: MemoryTransport, inject: () => AsyncIterable<Delivery> | undefined): Transport {
    return new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'subscribe')
          return (channel: string, signal: AbortSignal) =>
            channel === canaryChannel('coalmine', 'c')
              ? (inject() ?? target.subscribe(channel, signal))
              : target.subscribe(channel, signal);
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }

  it('goes on after a message whose handling throws', async () => {
    const ac = new AbortController();
    const { canary, say, close } = await setup({}, (ct) =>
      injecting(ct, () => {
        const real = ct.subscribe(canaryChannel('coalmine', 'c'), ac.signal);
        return (async function* () {
          // Not bytes at all: decode throws a TypeError, not an EnvelopeError.
          yield { payload: null as unknown as Uint8Array, receivedNs: 0n };
          yield* real;
        })();
      }),
    );
    await until(() => canary.controlErrors.exception === 1, 'the bad message handled');
    await say('register', 'after');
    await until(() => canary.coalminers().includes('after'), 'a later registration');
    ac.abort();
    await close();
  });

  it('subscribes again when its subscription fails', async () => {
    let calls = 0;
    const { canary, say, close } = await setup({}, (ct) =>
      injecting(ct, () =>
        calls++ === 0
          ? (async function* () {
              yield* [];
              throw new Error('subscription broke (test)');
            })()
          : undefined,
      ),
    );
    await until(() => canary.controlErrors.subscription === 1 && calls === 2, 'subscribed again', 5000);
    // The new subscription is in place once `calls` is 2: a registration now is heard.
    await say('register', 'after');
    await until(() => canary.coalminers().includes('after'), 'a later registration');
    await close();
  });
});

describe('canary runs', () => {
  it('gives each flow its own run id, so a coalminer pinged again sees a new run from seq 0', async () => {
    const { canary, ct, say, close } = await setup({ ratePerSecond: 200 });
    const m = new Coalminer({ name: 'm', transport: ct, register: ['c'], leaseMs: 300 });
    await m.start();
    await until(() => m.flowCounts().some((f) => f.counts.received > 20), 'first run');
    const first = canary.stats().get('m')!.runId;
    // A forged unregister ends the flow; the coalminer's next renewal starts another.
    await say('unregister', 'm');
    await until(() => m.flowCounts().length === 2 && m.flowCounts()[1]!.counts.received > 20, 'second run');
    const second = canary.stats().get('m')!;
    expect(second.runs).toBe(2);
    expect(second.runId).not.toBe(first);
    expect(m.flowCounts().map((f) => f.runId)).toEqual([first, second.runId]);
    await canary.stop();
    await until(() => sum(canary.stats(), 'attempted') === sum(canary.stats(), 'sent'), 'settled');
    // stop() sends what fell due since the last tick: wait for it to arrive.
    const received = () => m.flowCounts().reduce((n, r) => n + r.counts.received, 0);
    await until(() => received() === canary.stats().get('m')!.sent, 'the last pings');
    await m.stop();
    m.tick();
    const runs = m.flowCounts();
    for (const r of runs) expect(r.counts).toMatchObject({ duplicated: 0, lost: 0, sendFailedArrived: 0 });
    // One canary and one coalminer on a lossless bus: every ping of both runs arrived exactly once.
    expect(runs.reduce((n, r) => n + r.counts.received, 0)).toBe(canary.stats().get('m')!.sent);
    await close();
  });

  it('takes echoes only for the current run of a coalminer', async () => {
    const rtts: number[] = [];
    const { canary, say, close } = await setup({ observer: { rtt: (_c, s) => rtts.push(s) } });
    await say('register', 'm');
    await until(() => canary.coalminers().includes('m'), 'registered');
    const runId = BigInt(`0x${canary.stats().get('m')!.runId}`);
    const now = wallClockNs();
    await say('echo', 'm', { runId: runId ^ 1n, sentNs: now });
    await say('echo', 'm', { runId, sentNs: now });
    await until(() => rtts.length === 1, 'the echo of this run');
    await say('echo', 'm', { runId: runId + 1n, sentNs: now });
    await say('echo', 'm', { runId, sentNs: now });
    await until(() => rtts.length === 2, 'the next echo of this run');
    await close();
  });
});

describe('canary leases', () => {
  /** A clock the test moves. */
  function clock() {
    let now = wallClockNs();
    return { wallNs: () => now, advance: (ms: number) => (now += BigInt(ms) * 1_000_000n) };
  }

  /** Waits until the canary has ticked (attempted a ping) since this was called. */
  async function aTick(canary: Canary, coalminer: string) {
    const before = canary.stats().get(coalminer)?.attempted ?? 0;
    await until(() => (canary.stats().get(coalminer)?.attempted ?? 0) > before, 'a tick');
  }

  it('expires a lease that is not renewed while the transport is connected', async () => {
    const c = clock();
    const { canary, say, close } = await setup({ leaseMs: 1000, ratePerSecond: 10, wallNs: c.wallNs });
    await say('register', 'm');
    await until(() => canary.coalminers().includes('m'), 'registered');
    c.advance(900);
    await aTick(canary, 'm');
    expect(canary.coalminers()).toEqual(['m']);
    c.advance(200);
    await until(() => canary.coalminers().length === 0, 'the lease to expire');
    await close();
  });

  it('does not expire a lease while the transport is down, and gives a full lease once it is back', async () => {
    const c = clock();
    const { canary, ct, say, listen, close } = await setup({
      leaseMs: 1000,
      ratePerSecond: 10,
      wallNs: c.wallNs,
    });
    await say('register', 'm');
    await until(() => canary.coalminers().includes('m'), 'registered');
    ct.setDown(true);
    c.advance(5000);
    await aTick(canary, 'm');
    expect(canary.coalminers()).toEqual(['m']);
    // Back: the canary probes its own control channel, and the lease runs in full from when it hears that.
    const control = listen('', canaryChannel('coalmine', 'c'));
    ct.setDown(false);
    await until(() => control.got.some((e) => e.type === 'notice' && e.coalminer === ''), 'the probe');
    await new Promise((r) => setImmediate(r));
    c.advance(900);
    await aTick(canary, 'm');
    expect(canary.coalminers()).toEqual(['m']);
    expect(canary.stats().get('m')!.runs).toBe(1);
    c.advance(200);
    await until(
      () => canary.coalminers().length === 0,
      'the lease to expire a full lease after the reconnect',
    );
    control.stop();
    await close();
  });

  it('holds leases for at most a minute after a reconnect while its control channel stays silent', async () => {
    const c = clock();
    // A transport that does not deliver the canary's own messages back to it: its probe is never heard.
    const { canary, ct, say, close } = await setup(
      { leaseMs: 1000, ratePerSecond: 10, wallNs: c.wallNs },
      (ct) =>
        new Proxy(ct, {
          get(target, prop, receiver) {
            if (prop === 'publish')
              return (channel: string, payload: Uint8Array) =>
                channel === canaryChannel('coalmine', 'c')
                  ? Promise.resolve({})
                  : target.publish(channel, payload);
            const v = Reflect.get(target, prop, receiver) as unknown;
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
          },
        }),
    );
    await say('register', 'm');
    await until(() => canary.coalminers().includes('m'), 'registered');
    ct.setDown(true);
    c.advance(5000);
    await aTick(canary, 'm');
    ct.setDown(false);
    await new Promise((r) => setImmediate(r));
    // Held for a minute from the reconnect (a Kafka consumer takes seconds to rejoin), then a full lease.
    c.advance(59_000);
    await aTick(canary, 'm');
    expect(canary.coalminers()).toEqual(['m']);
    c.advance(1_100);
    await aTick(canary, 'm');
    expect(canary.coalminers()).toEqual(['m']);
    c.advance(900);
    await aTick(canary, 'm');
    expect(canary.coalminers()).toEqual(['m']);
    c.advance(200);
    await until(() => canary.coalminers().length === 0, 'the lease to expire');
    await close();
  });
});

describe('canary schedule accounting', () => {
  /** A clock the test moves. */
  function clock() {
    let now = wallClockNs();
    return { wallNs: () => now, advance: (ms: number) => (now += BigInt(ms) * 1_000_000n) };
  }

  /** A sample of /metrics: the value of `name` for coalminer m, or undefined. */
  async function metric(registry: Registry, name: string): Promise<number | undefined> {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
    return (m?.values as { labels: Record<string, string>; value: number }[] | undefined)?.find(
      (v) => v.labels.coalminer === 'm',
    )?.value;
  }

  it('shows a canary that fell behind at once, accounts due = attempted + behind, and ends with the unsent ones behind', async () => {
    const c = clock();
    const registry = new Registry();
    const metrics = new MessagingMetrics(registry, [0.01, 0.1, 1]);
    const { canary, peer, close } = await setup({
      ratePerSecond: 1000,
      wallNs: c.wallNs,
      observer: metrics.canaryObserver('c', 'memory'),
    });
    const m = new Coalminer({ name: 'm', transport: peer, register: ['c'], wallNs: c.wallNs });
    // Registered, not static: the coalminer listens before the first ping, so it can hear every one.
    await m.start();
    await until(() => canary.coalminers().includes('m'), 'registered');
    const samples: FlowStats[] = [];
    const sample = () => {
      const s = canary.stats().get('m')!;
      samples.push(s);
      return s;
    };
    await until(() => sample().attempted > 0, 'the first ping');
    expect(sample()).toMatchObject({ behind: 0, behindSeconds: 0 });

    // The clock jumps 2 s (a stalled process, a slow publish loop): before any tick runs, it shows.
    c.advance(2000);
    const behind = sample();
    expect(behind.behind).toBeGreaterThanOrEqual(2000);
    expect(behind.behindSeconds).toBeCloseTo(2, 1);
    expect(await metric(registry, 'coalmine_canary_behind_schedule_seconds')).toBeCloseTo(2, 1);
    expect(await metric(registry, 'coalmine_messages_behind_schedule')).toBe(behind.behind);

    // The canary catches up over its next ticks (a chunk of 1000 each), all along with due = attempted + behind.
    await until(() => sample().behind === 0, 'catching up');
    expect(await metric(registry, 'coalmine_messages_due_total')).toBe(sample().due);
    expect(sample().due).toBe(behind.due);

    // Another 2 s ahead and stopped before the canary can catch up: stop() sends one chunk of the 2000
    // due, the other 1000 (a second's worth) are behind for good.
    c.advance(2000);
    await canary.stop();
    const end = sample();
    expect(end.behind).toBeGreaterThanOrEqual(1000);
    expect(end.behindSeconds).toBeCloseTo(1, 1);
    expect(end.due).toBe(end.attempted + end.behind);
    for (const s of samples) expect(s.due).toBe(s.attempted + s.behind);

    // The coalminer expects exactly the attempted pings: never-attempted ones are not lost.
    await until(() => m.reports()[0]?.counts.received === end.sent, 'every sent ping');
    m.tick();
    // Time goes on after the end; the counts do not.
    c.advance(5000);
    expect(sample()).toEqual(end);
    expect(m.reports()[0]!.counts).toMatchObject({ expected: end.attempted, lost: 0, inFlight: 0 });
    await m.stop();
    await close();
  });

  it('counts none behind when it stops on schedule, however long the last chunk takes to go out', async () => {
    // Every read of this clock after `slow` is set moves it a whole interval on: time that passes while
    // stop() sends the pings due so far must not make the next one count as behind schedule.
    let now = wallClockNs();
    let slow = false;
    const wallNs = () => (slow ? (now += 10_000_000n) : now);
    const { canary, close } = await setup({ ratePerSecond: 100, wallNs, coalminers: ['m'] });
    await until(() => (canary.stats().get('m')?.attempted ?? 0) > 0, 'the first ping');
    now += 35_000_000n;
    slow = true;
    await canary.stop();
    slow = false;
    const end = canary.stats().get('m')!;
    expect(end).toMatchObject({ behind: 0, behindSeconds: 0 });
    expect(end.due).toBe(end.attempted);
    expect(end.attempted).toBeGreaterThanOrEqual(4);
    await close();
  });
});
