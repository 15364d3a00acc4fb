import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from '../stats/histogram.js';
import { HOUR, MINUTE } from './aggregate.js';
import { durationNs } from './backend.js';
import { RecentMinutes } from './overview-recent.js';
import type { ProbeRecord, TargetOverview } from './types.js';

const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs of `name` every `every` ms over [from, to): spread durations (some repeated), some failures. */
function runs(name: string, from: number, to: number, every: number, seed: number): ProbeRecord[] {
  const r = rng(seed);
  const out: ProbeRecord[] = [];
  for (let t = from; t < to; t += every) {
    const ok = r() > 0.08;
    out.push({
      time: t + Math.floor(r() * Math.min(every, 900)),
      name,
      kind: 'http',
      target: `http://${name}/`,
      ok,
      durationSeconds: r() < 0.2 ? 0.001 : 0.0003 * Math.exp(r() * 6),
      phases: {},
    });
  }
  return out;
}

const sec = (ns: number): number | null => (Number.isNaN(ns) ? null : Math.round(ns) / 1e9);

/** What probeWindow and probeSeries compute from raw runs: LatencyHistogram per minute and in all. */
function expected(all: readonly ProbeRecord[], name: string, from: number, to: number): TargetOverview {
  const steps = (to - from) / MINUTE;
  const minutes = Array.from({ length: steps }, () => ({ h: new LatencyHistogram(), runs: 0, failures: 0 }));
  const h = new LatencyHistogram();
  for (const r of all) {
    const t = Math.round(r.time);
    if (r.name !== name || t < from || t >= to) continue;
    const m = minutes[Math.floor((t - from) / MINUTE)]!;
    m.runs++;
    if (r.ok) {
      m.h.record(durationNs(r.durationSeconds));
      h.record(durationNs(r.durationSeconds));
    } else m.failures++;
  }
  const runsIn = minutes.reduce((n, m) => n + m.runs, 0);
  const failures = minutes.reduce((n, m) => n + m.failures, 0);
  return {
    window: {
      runs: runsIn,
      failures,
      successRatio: runsIn > 0 ? (runsIn - failures) / runsIn : null,
      p50: sec(h.percentile(50)),
      p95: sec(h.percentile(95)),
    },
    points: minutes.map((m, k) => ({
      time: from + k * MINUTE,
      p50: sec(m.h.percentile(50)),
      failures: m.failures,
      runs: m.runs,
    })),
  };
}

/** The hour a call at `now` asks for: whole minutes, ending with the current one. */
const hourAt = (now: number) => {
  const to = Math.floor(now / MINUTE) * MINUTE + MINUTE;
  return { from: to - HOUR, to };
};

describe('RecentMinutes', () => {
  it('gives exactly what LatencyHistogram gives over the raw runs, as the hour slides', () => {
    const recent = new RecentMinutes();
    const names = ['every-second', 'every-10s', 'every-7min', 'mostly-failing'];
    const all = [
      ...runs('every-second', T0, T0 + 2 * HOUR, 1000, 1),
      ...runs('every-10s', T0, T0 + 2 * HOUR, 10_000, 2),
      ...runs('every-7min', T0, T0 + 2 * HOUR, 7 * MINUTE, 3),
      ...runs('mostly-failing', T0, T0 + 2 * HOUR, 5000, 4).map((x, k) => ({ ...x, ok: k % 5 === 0 })),
    ].sort((a, b) => a.time - b.time);
    let written = 0;
    let checks = 0;
    // Written in batches of 10 s, as the writer does; a call every 37 s, mid-minute or not.
    for (let now = T0 + 10_000; now <= T0 + 2 * HOUR; now += 10_000) {
      const batch: ProbeRecord[] = [];
      while (written < all.length && all[written]!.time < now) batch.push(all[written++]!);
      recent.add(batch);
      if ((now - T0) % 37_000 > 10_000 && now < T0 + 100 * MINUTE) continue;
      const { from, to } = hourAt(now);
      if (from < recent.floor) continue; // not kept yet: the store answers for it
      for (const name of names)
        expect(recent.overview(name, from, to), `${name} at ${now - T0} ms`).toEqual(
          expected(all.slice(0, written), name, from, to),
        );
      checks++;
    }
    expect(checks).toBeGreaterThan(60);
    expect(recent.overview('never-written', T0, T0 + HOUR)).toBeUndefined();
  });

  it('answers ranges inside the hour it keeps, and late and out-of-order writes', () => {
    const recent = new RecentMinutes();
    const all = runs('t', T0, T0 + HOUR, 2000, 5);
    // Each minute's runs reversed, and a batch of minute 12 only after minute 40 was written.
    const late = all.filter((r) => r.time >= T0 + 12 * MINUTE && r.time < T0 + 13 * MINUTE);
    const rest = all.filter((r) => !late.includes(r));
    recent.add(rest.filter((r) => r.time < T0 + 40 * MINUTE).reverse());
    recent.add(late);
    recent.add(rest.filter((r) => r.time >= T0 + 40 * MINUTE));
    for (const [a, b] of [
      [0, 60],
      [0, 1],
      [12, 13],
      [5, 45],
      [30, 60],
      [59, 60],
      [10, 70],
    ] as const) {
      const from = T0 + a * MINUTE;
      const to = T0 + b * MINUTE;
      expect(recent.overview('t', from, to), `minutes ${a}-${b}`).toEqual(expected(all, 't', from, to));
    }
  });

  it('drops what leaves the hour and keeps memory to what the hour holds', () => {
    const recent = new RecentMinutes();
    const empty = new RecentMinutes();
    empty.add(runs('busy', T0, T0 + 1, 100, 6).map((r) => ({ ...r, ok: false })));
    const fixed = empty.bytes(); // the per-minute counts, there however many runs
    recent.add(runs('busy', T0, T0 + HOUR, 100, 6));
    const busy = recent.bytes() - fixed;
    expect(busy).toBeGreaterThan(30_000 * 4);
    // A much quieter hour after it: the busy minutes leave, and so does their memory.
    const quiet = runs('busy', T0 + HOUR, T0 + 3 * HOUR, 30_000, 7);
    recent.add(quiet);
    expect(recent.bytes() - fixed).toBeLessThan(busy / 100);
    const { from, to } = hourAt(T0 + 3 * HOUR - 1);
    expect(recent.overview('busy', from, to)).toEqual(expected(quiet, 'busy', from, to));
    // A run older than the hour it keeps is not taken in (the store has it).
    recent.add(runs('busy', T0 + 30 * MINUTE, T0 + 31 * MINUTE, 1000, 8));
    expect(recent.overview('busy', from, to)).toEqual(expected(quiet, 'busy', from, to));
    expect(recent.floor).toBe(from);
  });
});
