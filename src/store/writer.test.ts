import { afterEach, describe, expect, it } from 'vitest';
import type { FlowRecord, ProbeRecord, ScheduleRecord } from './types.js';
import { BatchedWriter } from './writer.js';

const probe = (i: number): ProbeRecord => ({
  time: 1_700_000_000_000 + i,
  name: 't',
  kind: 'tcp',
  target: 'h:1',
  ok: true,
  durationSeconds: 0.001,
  phases: {},
});
const flow = (i: number): FlowRecord => ({
  time: 1_700_000_000_000 + i,
  intervalMs: 10_000,
  canary: 'c',
  coalminer: 'm',
  transport: 'memory',
  region: 'r',
  runId: 'x',
  received: 1,
  lost: 0,
  duplicated: 0,
  reordered: 0,
  late: 0,
  sendFailed: 0,
  inFlight: 0,
  droppedLocally: 0,
  latency: { b: [], n: 0, min: 0, max: 0, sum: 0 },
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A store whose writes can hang or fail on demand, and that notices two writes at once. */
class FakeStore {
  mode: 'ok' | 'hang' | 'fail' = 'ok';
  probes: ProbeRecord[] = [];
  flows: FlowRecord[] = [];
  schedules: ScheduleRecord[] = [];
  calls = 0;
  active = 0;
  maxActive = 0;
  private release: (() => void)[] = [];

  private async enter<T>(rows: readonly T[], into: T[]): Promise<void> {
    this.calls++;
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.mode === 'hang') await new Promise<void>((r) => this.release.push(r));
      if (this.mode === 'fail') throw new Error('store is down');
      into.push(...rows);
    } finally {
      this.active--;
    }
  }
  writeProbes(r: readonly ProbeRecord[]) {
    return this.enter(r, this.probes);
  }
  writeFlows(r: readonly FlowRecord[]) {
    return this.enter(r, this.flows);
  }
  writeSchedules(r: readonly ScheduleRecord[]) {
    return this.enter(r, this.schedules);
  }
  /** Lets the hung writes finish (as failures, like a connection that finally times out). */
  unhang(as: 'ok' | 'fail'): void {
    this.mode = as;
    for (const r of this.release.splice(0)) r();
  }
}

const writers: BatchedWriter[] = [];
afterEach(async () => {
  for (const w of writers.splice(0)) await w.close(100);
});
const make = (store: FakeStore, opts: ConstructorParameters<typeof BatchedWriter>[1]) => {
  const w = new BatchedWriter(store, opts);
  writers.push(w);
  return w;
};

describe('BatchedWriter', () => {
  it('flushes by size without waiting for the timer, and by time', async () => {
    const store = new FakeStore();
    const w = make(store, { batchSize: 100, flushIntervalMs: 60_000, maxQueue: 1000 });
    for (let i = 0; i < 100; i++) w.pushProbe(probe(i));
    await sleep(20);
    expect(store.probes).toHaveLength(100);
    const timed = make(store, { batchSize: 100, flushIntervalMs: 50 });
    timed.pushFlow(flow(1));
    timed.pushProbe(probe(1));
    await sleep(150);
    expect(store.flows).toHaveLength(1);
    expect(timed.stats()).toMatchObject({ queued: 0, written: 2, dropped: 0, flushes: 1 });
  });

  it('lets the event loop turn between the batches of a synchronous store', async () => {
    // A store that writes synchronously, as SQLite does: without a turn between batches the writer
    // would write them all before any timer or socket runs.
    const writes: number[] = [];
    const store = new FakeStore();
    store.writeProbes = (r) => {
      // Each write holds the thread 3 ms, long enough for a 1 ms timer to fall due.
      const until = performance.now() + 3;
      while (performance.now() < until);
      writes.push(r.length);
      store.probes.push(...r);
      return Promise.resolve();
    };
    const w = make(store, { batchSize: 250, flushIntervalMs: 60_000, maxQueue: 10_000 });
    const seenBetween: number[] = [];
    const watch = setInterval(() => seenBetween.push(writes.length), 0);
    for (let i = 0; i < 1000; i++) w.pushProbe(probe(i));
    await sleep(100);
    clearInterval(watch);
    expect(writes).toEqual([250, 250, 250, 250]);
    expect(store.probes.map((p) => p.time)).toEqual(Array.from({ length: 1000 }, (_, i) => probe(i).time));
    // Some timer turn saw the writes part done.
    expect(seenBetween.some((n) => n > 0 && n < 4)).toBe(true);
  });

  it('never blocks or grows past its bound while the store hangs, counts drops, and resumes', async () => {
    const store = new FakeStore();
    store.mode = 'hang';
    const w = make(store, {
      batchSize: 50,
      flushIntervalMs: 10,
      maxQueue: 500,
      minBackoffMs: 5,
      maxBackoffMs: 20,
    });
    const t0 = performance.now();
    let accepted = 0;
    for (let i = 0; i < 5000; i++) if (w.pushProbe(probe(i))) accepted++;
    // 5000 pushes take well under a millisecond each: nothing waited for the store.
    expect(performance.now() - t0).toBeLessThan(200);
    await sleep(100);
    expect(accepted).toBe(500);
    expect(w.stats()).toMatchObject({ queued: 500, dropped: 4500, written: 0 });
    expect(store.maxActive).toBe(1);
    // The hung write fails at last, the store comes back: everything held is written.
    store.unhang('ok');
    await sleep(200);
    expect(w.stats()).toMatchObject({ queued: 0, written: 500, dropped: 4500 });
    expect(store.probes).toHaveLength(500);
    expect(store.maxActive).toBe(1);
  });

  it('retries failed batches with backoff and keeps order of what it accepted', async () => {
    const store = new FakeStore();
    store.mode = 'fail';
    const errors: unknown[] = [];
    const w = make(store, {
      batchSize: 10,
      flushIntervalMs: 10,
      maxQueue: 100,
      minBackoffMs: 10,
      maxBackoffMs: 40,
      onError: (e) => errors.push(e),
    });
    for (let i = 0; i < 30; i++) w.pushProbe(probe(i));
    await sleep(300);
    const callsWhileDown = store.calls;
    // Backoff: far fewer attempts than timer ticks (30 in 300 ms at 10 ms).
    expect(callsWhileDown).toBeGreaterThan(2);
    expect(callsWhileDown).toBeLessThan(20);
    expect(errors).toHaveLength(1); // one report per distinct failure, not per retry
    expect(w.stats().lastError).toBe('store is down');
    store.mode = 'ok';
    await sleep(200);
    expect(store.probes.map((p) => p.time)).toEqual(Array.from({ length: 30 }, (_, i) => probe(i).time));
    expect(store.maxActive).toBe(1);
  });

  it('counts failed writes, and clears the last error once a write succeeds (its time stays)', async () => {
    const store = new FakeStore();
    store.mode = 'fail';
    const errors: unknown[] = [];
    const w = make(store, {
      batchSize: 10,
      flushIntervalMs: 10,
      minBackoffMs: 5,
      onError: (e) => errors.push(e),
    });
    const before = Date.now();
    w.pushProbe(probe(1));
    while (w.stats().writeErrors < 2) await sleep(5);
    expect(w.stats()).toMatchObject({ lastError: 'store is down', written: 0 });
    const failedAt = w.stats().lastErrorAt!;
    expect(failedAt).toBeGreaterThanOrEqual(before);
    store.mode = 'ok';
    while (w.stats().written < 1) await sleep(5);
    const after = w.stats();
    expect(after.lastError).toBeUndefined();
    expect(after.lastErrorAt).toBeGreaterThanOrEqual(failedAt);
    const failures = after.writeErrors;
    // The same failure again after a recovery is a new incident: reported again.
    store.mode = 'fail';
    w.pushProbe(probe(2));
    while (w.stats().writeErrors === failures) await sleep(5);
    expect(errors).toHaveLength(2);
  });

  it('a mixed batch whose flows fail writes its probes once', async () => {
    const store = new FakeStore();
    const w = make(store, { batchSize: 10, flushIntervalMs: 10, minBackoffMs: 5 });
    const orig = store.writeFlows.bind(store);
    let fails = 2;
    store.writeFlows = (r) => (fails-- > 0 ? Promise.reject(new Error('flows down')) : orig(r));
    w.pushProbe(probe(1));
    w.pushFlow(flow(1));
    await sleep(200);
    expect(store.probes).toHaveLength(1);
    expect(store.flows).toHaveLength(1);
    expect(w.stats()).toMatchObject({ written: 2, queued: 0 });
  });

  it('close() flushes what it can, and gives up at its deadline when the store hangs', async () => {
    const store = new FakeStore();
    const w = new BatchedWriter(store, { flushIntervalMs: 60_000, batchSize: 1000 });
    for (let i = 0; i < 10; i++) w.pushProbe(probe(i));
    expect(await w.close()).toMatchObject({ written: 10, queued: 0, dropped: 0 });
    expect(w.pushProbe(probe(11))).toBe(false);
    expect(await w.close()).toMatchObject({ written: 10, dropped: 1 });

    const hung = new FakeStore();
    hung.mode = 'hang';
    const h = new BatchedWriter(hung, { flushIntervalMs: 60_000 });
    for (let i = 0; i < 10; i++) h.pushProbe(probe(i));
    const t0 = Date.now();
    const s = await h.close(150);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(s).toMatchObject({ written: 0, dropped: 10, queued: 0 });
    hung.unhang('fail');
  });

  it('rejects settings that cannot work', () => {
    expect(() => new BatchedWriter(new FakeStore(), { batchSize: 100, maxQueue: 10 })).toThrow(RangeError);
  });
});
