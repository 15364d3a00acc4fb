import { describe, expect, it } from 'vitest';
import { SequenceTracker, type SequenceCounts } from './sequence.js';

function invariant(c: SequenceCounts): void {
  expect(c.expected).toBe(c.received + c.inFlight + c.lost + c.sendFailed + c.droppedLocally);
  for (const v of Object.values(c)) expect(v).toBeGreaterThanOrEqual(0);
}

/** A deterministic PRNG, so every failure is reproducible. */
function prng(seed: number) {
  return () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

describe('SequenceTracker', () => {
  it('counts exactly the sequence numbers a sender skipped as lost', () => {
    const t = new SequenceTracker({ lossTimeoutMs: 1000 });
    const skipped = new Set([3, 4, 10, 57, 58, 59, 99]);
    for (let s = 0; s < 100; s++) if (!skipped.has(s)) t.observe(s, s);
    invariant(t.counts());
    expect(t.counts().inFlight).toBe(6); // 99 was never followed by anything yet
    t.tick(10_000);
    expect(t.counts()).toMatchObject({
      expected: 99,
      received: 93,
      lost: 6,
      inFlight: 0,
      reordered: 0,
      duplicated: 0,
    });
    // 99 was never followed by anything: it is not known to be missing yet.
    t.observe(100, 10_001);
    t.tick(20_000);
    expect(t.counts()).toMatchObject({ expected: 101, received: 94, lost: 7 });
  });

  it('counts reordering as reordered, never as lost or duplicated', () => {
    const t = new SequenceTracker({ lossTimeoutMs: 1000 });
    const order = [0, 2, 1, 5, 3, 4, 6, 9, 8, 7];
    order.forEach((s, i) => {
      t.observe(s, i);
      invariant(t.counts());
    });
    t.tick(100_000);
    expect(t.counts()).toMatchObject({
      expected: 10,
      received: 10,
      lost: 0,
      duplicated: 0,
      reordered: 5,
      inFlight: 0,
    });
  });

  it('counts duplicates once each and takes back a late message from lost', () => {
    const t = new SequenceTracker({ lossTimeoutMs: 100 });
    t.observe(0, 0);
    t.observe(0, 1);
    t.observe(2, 2);
    t.tick(1000);
    expect(t.counts()).toMatchObject({ lost: 1, duplicated: 1 });
    expect(t.observe(1, 1001)).toBe('late');
    expect(t.counts()).toMatchObject({ received: 3, lost: 0, late: 1, reordered: 1, duplicated: 1 });
    expect(t.observe(1, 1002)).toBe('duplicate');
    invariant(t.counts());
  });

  it('declares a gap lost once it falls out of the reorder window', () => {
    const t = new SequenceTracker({ reorderWindow: 10, lossTimeoutMs: 1e9 });
    t.observe(0, 0);
    for (let s = 2; s < 30; s++) t.observe(s, 0);
    t.tick(0);
    expect(t.counts()).toMatchObject({ lost: 1, inFlight: 0 });
  });

  it('does not call failed publishes lost, whether the news comes before or after the gap', () => {
    const before = new SequenceTracker({ lossTimeoutMs: 100 });
    before.observe(0, 0);
    before.noteFailed([[1, 500]]);
    before.observe(501, 1);
    before.tick(1000);
    expect(before.counts()).toMatchObject({
      expected: 502,
      received: 2,
      sendFailed: 500,
      lost: 0,
      inFlight: 0,
    });

    const after = new SequenceTracker({ lossTimeoutMs: 100 });
    after.observe(0, 0);
    after.observe(501, 1);
    after.tick(1000); // declared lost before the canary's word arrives
    expect(after.counts().lost).toBe(500);
    after.noteFailed([[1, 500]]);
    after.noteFailed([[1, 500]]); // repeated announcements change nothing
    expect(after.counts()).toMatchObject({ expected: 502, received: 2, sendFailed: 500, lost: 0 });
    invariant(after.counts());
  });

  it('counts a publish reported failed that arrived anyway, once, whenever the news comes', () => {
    // The news before the ping, for a sequence number not reached yet.
    const ahead = new SequenceTracker();
    ahead.observe(0, 0);
    ahead.noteFailed([[1, 3]]);
    ahead.noteFailed([[1, 3]]);
    ahead.observe(2, 1); // 2 got through after all; 1 is passed over as failed, not as a gap
    ahead.observe(4, 2);
    expect(ahead.counts()).toMatchObject({ received: 3, sendFailed: 2, sendFailedArrived: 1, inFlight: 0 });
    invariant(ahead.counts());

    // The news before the ping, for a sequence number already passed over (in flight, then failed).
    const behind = new SequenceTracker();
    behind.observe(0, 0);
    behind.observe(3, 1);
    behind.noteFailed([[1, 2]]);
    behind.observe(1, 2);
    behind.noteFailed([[1, 2]]);
    expect(behind.counts()).toMatchObject({ received: 3, sendFailed: 1, sendFailedArrived: 1, inFlight: 0 });
    invariant(behind.counts());

    // The ping before the news, and the news repeated.
    const late = new SequenceTracker();
    for (const s of [0, 1, 2, 3]) late.observe(s, s);
    late.noteFailed([[1, 2]]);
    late.noteFailed([[1, 2]]);
    late.noteFailed([[0, 3]]); // overlapping news: only 0 and 3 are new, and they arrived too
    expect(late.counts()).toMatchObject({ received: 4, sendFailed: 0, sendFailedArrived: 4 });
    expect(late.sendFailedArrived).toBe(4);
    invariant(late.counts());
  });

  it('treats a flow that starts mid-way (a coalminer joining) as starting there', () => {
    const t = new SequenceTracker();
    t.start(1000);
    t.observe(1001, 0);
    t.observe(1000, 1);
    t.observe(5, 2);
    expect(t.counts()).toMatchObject({ expected: 2, received: 2, reordered: 1, stale: 1, lost: 0 });
  });

  it('keeps exact accounting through random drops, failures, duplicates and reordering', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rand = prng(seed);
      const n = 5000;
      const dropped = new Set<number>();
      const failed = new Set<number>();
      /** Reported failed by the canary, yet delivered: the publish outcome was in doubt. */
      const inDoubt = new Set<number>();
      const arrivals: { seq: number; at: number; failedSoFar: number[] }[] = [];
      const failedSoFar: number[] = [];
      for (let s = 0; s < n; s++) {
        const r = rand();
        if (r < 0.02) {
          failed.add(s);
          failedSoFar.push(s);
          if (rand() < 0.2) {
            inDoubt.add(s);
            arrivals.push({ seq: s, at: s + rand() * 20, failedSoFar: failedSoFar.slice(-32) });
          }
          continue;
        }
        if (r < 0.05 && s < n - 1) {
          dropped.add(s);
          continue;
        }
        // Up to 20 ms of jitter at 1 message per ms: plenty of reordering.
        const at = s + rand() * 20;
        arrivals.push({ seq: s, at, failedSoFar: failedSoFar.slice(-32) });
        if (rand() < 0.01) arrivals.push({ seq: s, at: at + rand() * 5, failedSoFar: [] });
      }
      arrivals.sort((a, b) => a.at - b.at);
      const t = new SequenceTracker({ lossTimeoutMs: 100, reorderWindow: 1000 });
      t.start(0); // as the canary's confirm says
      let duplicates = 0;
      const seen = new Set<number>();
      for (const a of arrivals) {
        t.noteFailed(a.failedSoFar.map((s) => [s, s] as [number, number]));
        t.observe(a.seq, a.at);
        if (seen.has(a.seq)) duplicates++;
        seen.add(a.seq);
        t.tick(a.at);
        invariant(t.counts());
      }
      t.noteFailed([...failed].map((s) => [s, s] as [number, number]));
      t.tick(1e9);
      const c = t.counts();
      const last = Math.max(...arrivals.map((a) => a.seq));
      const reached = (set: Set<number>) => [...set].filter((s) => s <= last).length;
      expect(c.lost, `seed ${seed}`).toBe(reached(dropped));
      expect(c.sendFailed, `seed ${seed}`).toBe(reached(failed) - inDoubt.size);
      expect(c.sendFailedArrived, `seed ${seed}`).toBe(inDoubt.size);
      expect(c.duplicated, `seed ${seed}`).toBe(duplicates);
      expect(c.received, `seed ${seed}`).toBe(seen.size);
      expect(c.inFlight).toBe(0);
      expect(c.late).toBe(0); // jitter (20 ms) is below the loss timeout (100 ms)
    }
  });

  it('uses bounded memory through a long outage', () => {
    const t = new SequenceTracker({ lossTimeoutMs: 10, maxGaps: 100 });
    for (let s = 0; s < 1_000_000; s += 2) t.observe(s, s / 1000);
    t.tick(1e9);
    const c = t.counts();
    expect(c.lost).toBe(499_999);
    expect(c.received).toBe(500_000);
  });

  it('does work bounded by its window, not by a gap, and refuses what is not a safe integer', () => {
    const t = new SequenceTracker({ lossTimeoutMs: 10 });
    t.observe(0, 0);
    // A gap of 2^52 and then of a few thousand just past the window's edge: each is a constant amount of work.
    t.observe(2 ** 52, 1);
    t.observe(2 ** 52 + (1 << 16) + 3, 2);
    for (let s = 2 ** 52 + (1 << 16) + 4; s < 2 ** 52 + (1 << 16) + 100; s++) t.observe(s, 3);
    t.tick(1e6);
    const c = t.counts();
    expect(c.received).toBe(99);
    expect(c.lost).toBe(2 ** 52 + (1 << 16) + 100 - 99);
    expect(c.duplicated).toBe(0);
    invariant(c);
    // A duplicate just inside the window is still seen as one after the bits were cleared in bytes.
    expect(t.observe(2 ** 52 + (1 << 16) + 50, 4)).toBe('duplicate');
    expect(() => t.observe(2 ** 53, 5)).toThrow(RangeError);
    expect(() => t.observe(-1, 5)).toThrow(RangeError);
    expect(t.counts()).toEqual({ ...c, duplicated: 1 });
  });

  it('counts what this process dropped apart from loss: ahead of the head, in a gap, or already judged lost', () => {
    const t = new SequenceTracker({ lossTimeoutMs: 10 });
    t.observe(0, 0);
    t.noteDropped(3); // ahead of the head
    t.observe(5, 1); // 1, 2, 4 become gaps; 3 is dropped here
    t.noteDropped(2); // in a gap
    t.tick(100); // 1 and 4 are lost
    t.noteDropped(4); // judged lost, then found to be ours
    t.noteDropped(5); // it arrived: a dropped copy of it changes nothing
    let c = t.counts();
    invariant(c);
    expect(c).toMatchObject({ expected: 6, received: 2, droppedLocally: 3, lost: 1, inFlight: 0 });
    // A broker's second copy of a dropped ping is received after all.
    expect(t.observe(3, 101)).toBe('reordered');
    c = t.counts();
    invariant(c);
    expect(c).toMatchObject({ received: 3, droppedLocally: 2, lost: 1 });
  });
});
