import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from '../stats/histogram.js';
import { HOUR, MINUTE, PROBE } from './aggregate.js';
import { decodeBlock, encodeBlock, type Bucket } from './codec.js';
import { decodeProbeMinutes, toParts, type MinutePart } from './overview.js';

const BLOCK = Date.UTC(2026, 0, 5, 10);

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

/** An hour of minutes, some missing, with runs, failures, latencies (some repeated) and phases. */
function hour(seed: number, perMinute: number): Bucket[] {
  const r = rng(seed);
  const out: Bucket[] = [];
  for (let m = 0; m < 60; m++) {
    if (r() < 0.1) continue;
    const hist = new LatencyHistogram();
    let failures = 0;
    const runs = 1 + Math.floor(r() * perMinute);
    for (let k = 0; k < runs; k++) {
      if (r() < 0.05) failures++;
      else hist.record(r() < 0.3 ? 1_000_000 : Math.round(2e5 * Math.exp(r() * 8)));
    }
    const b: Bucket = { time: BLOCK + m * MINUTE, counts: [runs, failures], hist };
    if (r() < 0.7)
      b.phases = new Map([
        ['connect', { n: runs, sumNs: runs * 100_000 }],
        ['a-phase-of-its-own', { n: Math.max(0, runs - 1), sumNs: 5_000 }],
      ]);
    out.push(b);
  }
  return out;
}

const plain = (parts: MinutePart[]) =>
  parts.map(({ idx, cnt, lo, hi, ...rest }) => ({
    ...rest,
    idx: [...idx.subarray(lo, hi)],
    cnt: [...cnt.subarray(lo, hi)],
  }));

describe('decodeProbeMinutes', () => {
  it('reads a block as decodeBlock does, plain and deflated, from any minute on', () => {
    for (const [seed, perMinute] of [
      [1, 1],
      [2, 3],
      [3, 60],
      [4, 600],
    ] as const) {
      const data = encodeBlock(BLOCK, MINUTE, PROBE.nCounts, hour(seed, perMinute));
      for (const from of [BLOCK, BLOCK + 17 * MINUTE, BLOCK + 59 * MINUTE, BLOCK + HOUR]) {
        const want = toParts(
          decodeBlock(data, BLOCK, MINUTE, PROBE.nCounts, PROBE.legacyCounts).filter((b) => b.time >= from),
        );
        expect(plain(decodeProbeMinutes(data, BLOCK, from)), `seed ${seed} from ${from}`).toEqual(
          plain(want),
        );
      }
    }
  });

  it('refuses what is not a block', () => {
    expect(() => decodeProbeMinutes(Uint8Array.from([9, 1, 2]), BLOCK, BLOCK)).toThrow(RangeError);
    const data = encodeBlock(BLOCK, MINUTE, PROBE.nCounts, hour(5, 3));
    if (data[0] === 5)
      expect(() => decodeProbeMinutes(data.subarray(0, 6), BLOCK, BLOCK)).toThrow(RangeError);
  });
});
