import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { MemoryTransport } from '../transports/memory/index.js';
import { TransportError, type PublishReceipt, type Transport } from '../transports/transport.js';
import { Canary } from './canary.js';
import { Coalminer } from './coalminer.js';
import { decode, type Envelope } from './envelope.js';

/**
 * Exact accounting when publishes fail the way an overloaded transport's do: some are rejected at once
 * (a full window), some time out while the broker still delivers them (in doubt), some time out long
 * after they were sent, and control messages fail like pings. The transport below decides each
 * publish's fate and records what it really delivered, so every count has a ground truth.
 */

/** What happens to one publish: delivered or not, and rejected (after `afterMs`) or acknowledged. */
interface Fate {
  deliver: boolean;
  rejectAfterMs?: number;
}

interface Controlled {
  transport: Transport;
  /** Sequence numbers of the pings that reached the bus. */
  delivered: Set<number>;
  /** Notices (a flow's last word) that reached the bus, and those whose publish failed. */
  notices: { delivered: number; failed: number };
}

function controlled(inner: Transport, fate: (e: Envelope) => Fate): Controlled {
  const out: Controlled = { transport: inner, delivered: new Set(), notices: { delivered: 0, failed: 0 } };
  out.transport = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'publish') {
        return async (channel: string, payload: Uint8Array): Promise<PublishReceipt> => {
          const e = decode(payload);
          const f = fate(e);
          let receipt: PublishReceipt = {};
          if (f.deliver) {
            receipt = await target.publish(channel, payload);
            if (e.type === 'ping') out.delivered.add(Number(e.seq));
            if (e.type === 'notice') out.notices.delivered++;
          }
          if (f.rejectAfterMs === undefined) return receipt;
          if (e.type === 'notice') out.notices.failed++;
          if (f.rejectAfterMs > 0) await sleep(f.rejectAfterMs);
          throw new TransportError('timeout', 'no reply within the timeout (test)');
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return out;
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

let bus = 0;

/** Where the run is: `tail` for the pings of its last 100 ms, `stopping` from canary.stop() on. */
interface Phase {
  tail: boolean;
  stopping: boolean;
}

/**
 * Runs a canary through `fate` to a coalminer on a plain transport for `ms`, stops the canary and waits
 * until the coalminer accounts for every attempted ping (or 10 s); returns both sides' counts.
 */
async function run(
  fate: (e: Envelope, phase: Phase) => Fate,
  opts: { rate: number; ms: number; lossTimeoutMs?: number },
) {
  const base = new MemoryTransport(`memory://accounting-${++bus}`);
  await base.connect();
  const phase: Phase = { tail: false, stopping: false };
  const pub = controlled(base, (e) => fate(e, phase));
  const canary = new Canary({
    name: 'c',
    transport: pub.transport,
    ratePerSecond: opts.rate,
    maxLagMs: 1000,
  });
  const miner = new Coalminer({
    name: 'm',
    transport: base,
    register: ['c'],
    sequence: { lossTimeoutMs: opts.lossTimeoutMs ?? 1000 },
  });
  try {
    await canary.start();
    await miner.start();
    await until('registered', () => miner.isConfirmedBy('c'));
    await sleep(opts.ms - 100);
    phase.tail = true;
    await sleep(100);
    phase.stopping = true;
    await canary.stop();
    const stats = () => canary.stats().get('m')!;
    const counts = () => miner.flowCounts()[0]!.counts;
    // Every attempted ping accounted for, none in flight, and every failure the canary counted known to
    // the coalminer (the word for publishes that settle late follows them): or the deadline, and the
    // expectations say why.
    await until('the coalminer to account for every ping', () => {
      miner.tick();
      const c = counts();
      const s = stats();
      return (
        s.pending === 0 &&
        c.expected === s.attempted &&
        c.inFlight === 0 &&
        c.sendFailed + c.sendFailedArrived >= s.failed
      );
    }).catch(() => undefined);
    miner.tick();
    return { s: stats(), c: counts(), pub };
  } finally {
    await miner.stop();
    await canary.stop();
    await base.close();
  }
}

/** Both sides' counts add up, against what the transport really delivered. */
function expectExact(r: Awaited<ReturnType<typeof run>>): void {
  const { s, c, pub } = r;
  const delivered = pub.delivered.size;
  expect(s.pending).toBe(0);
  expect(s.attempted).toBe(s.sent + s.failed);
  // Every attempted ping is in exactly one of the coalminer's states.
  expect(c.expected).toBe(s.attempted);
  expect(c.received + c.inFlight + c.lost + c.sendFailed + c.droppedLocally).toBe(s.attempted);
  expect(c.inFlight).toBe(0);
  // Nothing the transport delivered is lost, nothing is counted twice, and what it never delivered is
  // known to have failed to send: not lost.
  expect(c.received).toBe(delivered);
  expect(c.duplicated).toBe(0);
  expect(c.lost).toBe(0);
  expect(c.sendFailed).toBe(s.attempted - delivered);
  // Failed at the canary, yet delivered: in doubt, counted received once.
  expect(c.sendFailedArrived).toBe(s.failed - c.sendFailed);
}

describe('exact accounting when publishes fail under overload', () => {
  it('the last word gets through when its publish fails at first, so the tail is accounted for', async () => {
    // Once the canary stops, the transport is overloaded for 300 ms: every publish is rejected (its window
    // is full), the last word included. Before that, every 7th ping times out after it was delivered.
    let overloadedUntil = 0;
    const r = await run(
      (e, phase) => {
        if (phase.stopping && overloadedUntil === 0) overloadedUntil = Date.now() + 300;
        if (Date.now() < overloadedUntil) return { deliver: false, rejectAfterMs: 0 };
        if (e.type === 'ping' && e.seq % 7n === 0n) return { deliver: true, rejectAfterMs: 20 };
        // The last pings are never delivered.
        if (e.type === 'ping' && phase.tail) return { deliver: false, rejectAfterMs: 0 };
        return { deliver: true };
      },
      { rate: 1000, ms: 800 },
    );
    expect(r.pub.notices.failed).toBeGreaterThan(0);
    expect(r.c.sendFailedArrived).toBeGreaterThan(0);
    expectExact(r);
    expect(r.pub.notices.delivered).toBeGreaterThan(0);
  });

  it('announces every failed range at the end, not only the latest 255', async () => {
    // Every 3rd ping is rejected at once (many ranges); in the first 300 ms, every 10th other one times
    // out 400 ms later without being delivered: its range is older than hundreds of newer ones by then.
    let t0 = 0;
    const r = await run(
      (e) => {
        if (e.type !== 'ping') return { deliver: true };
        t0 ||= Date.now();
        if (e.seq % 3n === 0n) return { deliver: false, rejectAfterMs: 0 };
        if (e.seq % 10n === 1n && Date.now() - t0 < 300) return { deliver: false, rejectAfterMs: 400 };
        return { deliver: true };
      },
      { rate: 2000, ms: 1200, lossTimeoutMs: 500 },
    );
    expectExact(r);
  });

  it('announces failures that settle after stop() stopped waiting for them', async () => {
    // The last pings time out 5.5 s after they were sent, later than stop() waits (5 s).
    const r = await run(
      (e, phase) => {
        if (e.type === 'ping' && phase.tail) return { deliver: false, rejectAfterMs: 5500 };
        return { deliver: true };
      },
      { rate: 500, ms: 300, lossTimeoutMs: 500 },
    );
    expect(r.s.failed).toBeGreaterThan(0);
    expectExact(r);
  }, 20_000);
});
