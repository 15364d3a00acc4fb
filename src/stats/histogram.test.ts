import { describe, expect, it } from 'vitest';
import { LatencyHistogram, RollingHistogram } from './histogram.js';

function exactPercentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

describe('LatencyHistogram', () => {
  it('gives every percentile within 0.1 % of the exact value', () => {
    const values: number[] = [];
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const h = new LatencyHistogram();
    for (let i = 0; i < 100_000; i++) {
      // Log-normal-ish latencies from 1 µs to ~10 s.
      const v = Math.round(Math.exp(7 + rand() * 16));
      values.push(v);
      h.record(v);
    }
    values.sort((a, b) => a - b);
    for (const p of [1, 50, 90, 95, 99, 99.9]) {
      const exact = exactPercentile(values, p);
      expect(Math.abs(h.percentile(p) - exact) / exact).toBeLessThan(0.001);
    }
    expect(h.max).toBe(values.at(-1));
    expect(h.min).toBe(values[0]);
    expect(h.count).toBe(100_000);
  });

  it('keeps small values exactly and handles powers of two', () => {
    const h = new LatencyHistogram();
    for (const v of [0, 1, 2047, 2048, 4096, 2 ** 40]) h.record(v);
    expect(h.percentile(1)).toBe(0);
    expect(h.percentile(50)).toBe(2047);
    expect(Math.abs(h.percentile(60) - 2048) / 2048).toBeLessThan(0.001);
    expect(h.percentile(100)).toBe(2 ** 40);
  });

  it('puts values on both sides of 2^32 ns, and at every power of two, in the log-linear bucket', () => {
    // The bucket of v: exact below 2048, else 1024 sub-buckets per power of two (floor(v / 2^e)).
    const expected = (v: number) => {
      if (v < 2048) return v;
      let e = 0;
      while (Math.floor(v / 2 ** e) >= 2048) e++;
      return 2048 + (e - 1) * 1024 + (Math.floor(v / 2 ** e) - 1024);
    };
    const bucketOf = (v: number) => {
      const h = new LatencyHistogram();
      h.record(v);
      return h.toJSON().b[0]![0];
    };
    for (let k = 11; k <= 45; k++)
      for (const v of [2 ** k - 1, 2 ** k, 2 ** k + 1, Math.round(2 ** k * 1.37)])
        expect(bucketOf(v), `value ${v}`).toBe(expected(v));
  });

  it('merges and round-trips through JSON', () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) (i % 2 ? a : b).record(i * 1000);
    a.merge(b);
    expect(a.count).toBe(1000);
    expect(Math.abs(a.percentile(50) - 500_000) / 500_000).toBeLessThan(0.001);
    const c = LatencyHistogram.fromJSON(
      JSON.parse(JSON.stringify(a)) as ReturnType<LatencyHistogram['toJSON']>,
    );
    expect(c.percentile(99)).toBe(a.percentile(99));
    expect(c.mean).toBe(a.mean);
  });

  it('is NaN when empty', () => {
    expect(new LatencyHistogram().percentile(50)).toBeNaN();
  });
});

describe('RollingHistogram', () => {
  it('forgets slots older than the window', () => {
    const r = new RollingHistogram(1000, 10);
    r.record(5e6, 0);
    r.record(1e6, 5_500);
    expect(r.window(2000, 6000).count).toBe(1);
    expect(r.window(10_000, 6000).count).toBe(2);
    for (let t = 0; t < 20_000; t += 1000) r.record(1, t);
    expect(r.window(100_000, 20_000).count).toBeLessThanOrEqual(10);
  });
});
