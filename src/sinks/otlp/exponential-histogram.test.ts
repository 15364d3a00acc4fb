import { describe, expect, it } from 'vitest';
import {
  bucketsByIndex,
  definitionBuckets,
  definitionScale,
} from '../../../test/support/exponential-buckets.js';
import { ExponentialHistogram } from './exponential-histogram.js';

function bucketsOf(h: ExponentialHistogram): Map<number, number> {
  const { offset, bucketCounts } = h.snapshot().positive;
  return bucketsByIndex(offset, bucketCounts);
}

function seeded(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

describe('ExponentialHistogram', () => {
  it('puts 1 ms, 2 ms and 4 ms at scale 6, 64 buckets apart, in 129 buckets', () => {
    const h = new ExponentialHistogram();
    for (const v of [0.001, 0.002, 0.004]) h.record(v);
    const s = h.snapshot();
    // At scale 7 the three would span 257 buckets, more than 160; at scale 6 they span 129.
    expect(s.scale).toBe(6);
    expect(s.positive.offset).toBe(-638);
    expect(s.positive.bucketCounts).toHaveLength(129);
    expect(s.positive.bucketCounts.filter((c) => c !== 0)).toEqual([1, 1, 1]);
    expect([0, 64, 128].map((i) => s.positive.bucketCounts[i])).toEqual([1, 1, 1]);
    // Bucket -638 at scale 6 is (2^(-638/64), 2^(-637/64)] = (0.000997.., 0.001008..]: it holds 1 ms.
    expect(2 ** (-638 / 64)).toBeLessThan(0.001);
    expect(2 ** (-637 / 64)).toBeGreaterThanOrEqual(0.001);
    expect(s).toMatchObject({ count: 3, zeroCount: 0, min: 0.001, max: 0.004 });
    expect(s.sum).toBe(0.001 + 0.002 + 0.004);
  });

  it('closes a bucket with its power of two (upper bounds are inclusive)', () => {
    const h = new ExponentialHistogram();
    for (const v of [0.25, 0.5, 1, 2]) h.record(v);
    const s = h.snapshot();
    // 2^k is the top of bucket k*2^scale - 1; from 2^-2 to 2^1 is 3*2^scale + 1 buckets: 97 at scale 5.
    expect(s.scale).toBe(5);
    expect(s.positive.offset).toBe(-2 * 32 - 1);
    expect(s.positive.bucketCounts).toHaveLength(97);
    expect([0, 32, 64, 96].map((i) => s.positive.bucketCounts[i])).toEqual([1, 1, 1, 1]);
  });

  it('keeps one value at scale 20', () => {
    const h = new ExponentialHistogram();
    h.record(1);
    expect(h.snapshot()).toMatchObject({ scale: 20, positive: { offset: -1, bucketCounts: [1] } });
  });

  it('counts zero in the zero bucket and refuses what is not a measurement', () => {
    const h = new ExponentialHistogram();
    expect(h.record(0)).toBe(true);
    for (const v of [NaN, -0.001, Infinity, -Infinity]) expect(h.record(v)).toBe(false);
    h.record(0.5);
    expect(h.snapshot()).toMatchObject({ count: 2, zeroCount: 1, sum: 0.5, min: 0, max: 0.5 });
    expect(new ExponentialHistogram().snapshot()).toMatchObject({ count: 0, min: undefined, max: undefined });
  });

  it('places 20,000 latencies from 1 µs to 100 s as the definition does, at the largest scale that fits', () => {
    const rand = seeded(7);
    const values = Array.from({ length: 20_000 }, () => 1e-6 * Math.exp(rand() * Math.log(1e8)));
    const h = new ExponentialHistogram();
    let sum = 0;
    for (const v of values) {
      h.record(v);
      sum += v;
    }
    const s = h.snapshot();
    expect(s.scale).toBe(definitionScale(values, 160));
    expect(bucketsOf(h)).toEqual(definitionBuckets(values, s.scale));
    expect(s.positive.bucketCounts.length).toBeLessThanOrEqual(160);
    expect(s.positive.bucketCounts[0]).not.toBe(0);
    expect(s.positive.bucketCounts.at(-1)).not.toBe(0);
    expect(s.count).toBe(20_000);
    expect(s.sum).toBe(sum);
    expect(s.min).toBe(Math.min(...values));
    expect(s.max).toBe(Math.max(...values));
  });

  it('ends the same whatever order the values come in', () => {
    const rand = seeded(11);
    const values = Array.from({ length: 500 }, () => 1e-4 * Math.exp(rand() * 10));
    const forward = new ExponentialHistogram(40);
    const backward = new ExponentialHistogram(40);
    values.forEach((v) => forward.record(v));
    [...values].reverse().forEach((v) => backward.record(v));
    expect(backward.snapshot().scale).toBe(forward.snapshot().scale);
    expect(backward.snapshot().positive).toEqual(forward.snapshot().positive);
  });

  it('goes to negative scales when few buckets must hold a wide range', () => {
    const values = [1e-9, 1, 1e3, 1e9];
    const h = new ExponentialHistogram(4);
    values.forEach((v) => h.record(v));
    const s = h.snapshot();
    expect(s.scale).toBeLessThan(0);
    expect(s.scale).toBe(definitionScale(values, 4));
    expect(bucketsOf(h)).toEqual(definitionBuckets(values, s.scale));
  });

  it('refuses fewer than 4 buckets', () => {
    expect(() => new ExponentialHistogram(2)).toThrow(RangeError);
  });
});
