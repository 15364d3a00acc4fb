import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { systemClock } from './clock.js';
import { Scheduler, startOffsetMs } from './scheduler.js';

const nowMs = () => Number(systemClock.nowNs()) / 1e6;

describe('Scheduler', () => {
  it('keeps runs on fixed slots: a slow run does not push later runs back', async () => {
    const starts: number[] = [];
    const s = new Scheduler(systemClock);
    s.add({
      id: 'a',
      intervalMs: 40,
      run: async () => {
        starts.push(nowMs());
        await sleep(25);
      },
    });
    s.start();
    await sleep(650);
    s.stop();
    await s.idle();
    // Pushed back, each run would start 25 ms after the slot before's: 10 runs, not 16, in 650 ms.
    expect(starts.length).toBeGreaterThanOrEqual(14);
    // Slot k starts at origin + k x 40 ms; pushed back, start k - 40k would grow by 25 ms a run (half
    // the starts over 80 ms from their median). Medians, not each start: on a loaded machine any one
    // start, the first too, can be late.
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    const offsets = starts.map((t, k) => t - k * 40);
    const origin = median(offsets);
    expect(median(offsets.map((o) => Math.abs(o - origin)))).toBeLessThan(15);
  });

  it('reports the lateness of each launch when one tick launches many jobs', async () => {
    // A clock that moves only when a job starts: each launch costs 5 ms of synchronous work, as a
    // probe opening its socket does, so the fifth job due in one tick really starts 20 ms late.
    let ns = 0n;
    const clock = { nowNs: () => ns, wallMs: () => Number(ns / 1_000_000n) };
    const first = new Map<string, number>();
    const s = new Scheduler(clock, {
      lateness: (id, sec) => void (first.has(id) || first.set(id, Math.round(sec * 1000))),
    });
    // A 1 ms interval puts every start offset at 0, so all five are due in the same tick.
    for (const id of ['a', 'b', 'c', 'd', 'e']) {
      s.add({ id, intervalMs: 1, run: async () => void (ns += 5_000_000n) });
    }
    s.start();
    await sleep(20);
    s.stop();
    await s.idle();
    expect([...first.values()].sort((x, y) => x - y)).toEqual([0, 5, 10, 15, 20]);
  });

  it('counts slots from a given origin, and from the first not before notBeforeMs', async () => {
    // A clock that stands still at 10 s: the origin puts the first slot in the past.
    const clock = { nowNs: () => 10_000_000_000n, wallMs: () => 10_000 };
    const late: number[] = [];
    const skipped: string[] = [];
    const s = new Scheduler(clock, {
      lateness: (_id, sec) => late.push(Math.round(sec * 1000)),
      skipped: (_id, reason) => skipped.push(reason),
    });
    const offset = startOffsetMs('j', 1000);
    // Slots at 7 s + offset, 8 s + offset... : three passed (7, 8, 9 s) before now (10 s), unless offset
    // is 0 (then 10 s itself is due too and runs on time).
    s.add({ id: 'j', intervalMs: 1000, run: async () => undefined }, { originMs: 7000 });
    // With notBefore 9.5 s, the first slot is the first at or after it.
    s.add({ id: 'k', intervalMs: 1000, run: async () => undefined }, { originMs: 0, notBeforeMs: 9500 });
    s.start();
    await sleep(20);
    s.stop();
    await s.idle();
    // j: the slot at 7 s + offset started (10 s - 7 s - offset) late, the two after it skipped as stalled.
    expect(late).toContain(3000 - offset);
    const k = startOffsetMs('k', 1000);
    // k: its first slot is 9 s + k or 10 s + k (the first >= 9.5 s): at most one slot late, none skipped.
    const kDue = k >= 500 ? 9000 + k : 10_000 + k;
    if (kDue <= 10_000) expect(late).toContain(10_000 - kDue);
    expect(skipped).toEqual(['stalled', 'stalled']);
  });

  it('never runs one job twice at once, and counts the slots it skipped', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const skipped: string[] = [];
    const s = new Scheduler(systemClock, { skipped: (_id, reason) => skipped.push(reason) });
    s.add({
      id: 'slow',
      intervalMs: 30,
      run: async () => {
        runs++;
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(70);
        running--;
      },
    });
    s.start();
    const extra = s.runNow('slow');
    await sleep(400);
    s.stop();
    await extra;
    await s.idle();
    expect(maxRunning).toBe(1);
    expect(runs).toBeGreaterThanOrEqual(4);
    expect(skipped.filter((r) => r === 'overlap').length).toBeGreaterThanOrEqual(4);
  });

  it('runNow joins a run that is already going instead of starting another', async () => {
    let runs = 0;
    const s = new Scheduler(systemClock);
    s.add({ id: 'j', intervalMs: 60_000, run: () => (runs++, sleep(50)) });
    const a = s.runNow('j');
    const b = s.runNow('j');
    expect(a).toBe(b);
    await a;
    expect(runs).toBe(1);
    await expect(s.runNow('missing')).rejects.toThrow('no job missing');
  });

  it('spreads start offsets over the interval and reports its lateness', async () => {
    const firsts = new Map<string, number>();
    const lateness: number[] = [];
    const s = new Scheduler(systemClock, { lateness: (_id, sec) => lateness.push(sec) });
    const t0 = nowMs();
    for (let i = 0; i < 200; i++) {
      const id = `t${i}`;
      s.add({ id, intervalMs: 400, run: async () => void (firsts.has(id) || firsts.set(id, nowMs() - t0)) });
    }
    s.start();
    await sleep(450);
    s.stop();
    expect(firsts.size).toBe(200);
    const offsets = [...firsts.values()];
    // Hash-spread offsets: each quarter of the interval gets a fair share of first runs.
    for (let q = 0; q < 4; q++) {
      const inQuarter = offsets.filter((o) => o >= q * 100 && o < (q + 1) * 100).length;
      expect(inQuarter).toBeGreaterThan(25);
    }
    expect(lateness.length).toBeGreaterThanOrEqual(200);
    expect(Math.max(...lateness)).toBeLessThan(0.05);
  });

  it('after a stall, starts the runs that fell due together at a bounded rate, and loses none', async () => {
    // 200 jobs at 1 s launch at 0.2 per ms on average; the budget lets them run 4x ahead (0.8 per ms)
    // with 8 in hand. A stall longer than the interval leaves every job overdue at once.
    const launches: { id: string; at: number }[] = [];
    const s = new Scheduler(systemClock);
    for (let i = 0; i < 200; i++) {
      const id = `t${i}`;
      s.add({ id, intervalMs: 1000, run: async () => void launches.push({ id, at: nowMs() }) });
    }
    s.start();
    await sleep(1050);
    const end = nowMs() + 1100;
    while (nowMs() < end) {
      // the stall: a busy event loop
    }
    await sleep(600);
    s.stop();
    const after = launches.filter((l) => l.at >= end);
    // Without the budget all 200 start in the first tick after the stall.
    const perWindow = new Map<number, number>();
    for (const l of after)
      perWindow.set(Math.floor(l.at / 10), (perWindow.get(Math.floor(l.at / 10)) ?? 0) + 1);
    for (const [w, n] of perWindow) perWindow.set(w, n + (perWindow.get(w + 1) ?? 0));
    expect(Math.max(...perWindow.values())).toBeLessThanOrEqual(8 + 8 + 8);
    // Every job ran again after the stall: held back, not dropped.
    expect(new Set(after.map((l) => l.id)).size).toBe(200);
  });

  it('stops scheduling a removed job', async () => {
    let runs = 0;
    const s = new Scheduler(systemClock);
    s.add({ id: 'r', intervalMs: 20, run: async () => void runs++ });
    s.start();
    await sleep(100);
    s.remove('r');
    const after = runs;
    await sleep(100);
    s.stop();
    expect(after).toBeGreaterThan(0);
    expect(runs).toBe(after);
  });
});
