import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from '../stats/histogram.js';
import {
  decodeBlock,
  decodeHistogram,
  decodeProbeChunk,
  encodeBlock,
  encodeHistogram,
  encodeProbeChunk,
  type Bucket,
  type StoredProbeRun,
} from './codec.js';

const hist = (values: number[]) => {
  const h = new LatencyHistogram();
  for (const v of values) h.record(v);
  return h;
};

describe('codec', () => {
  it('round-trips a standalone histogram exactly (empty, one sample, many, values above 2^32)', () => {
    for (const values of [[], [1234567], [5, 5, 2047, 2048, 9_000_000_000, 123_456_789, 123_456_790]]) {
      const h = hist(values);
      const want = h.toJSON();
      want.b.sort((a, b) => a[0] - b[0]);
      expect(decodeHistogram(encodeHistogram(h.toJSON())).toJSON()).toEqual(want);
    }
  });

  it('round-trips a block: slots, counts, phases; histograms keep their buckets (percentiles within 0.05 %)', () => {
    const start = 1_700_000_000_000 - (1_700_000_000_000 % 3_600_000);
    const buckets: Bucket[] = [
      {
        time: start,
        counts: [4, 1],
        hist: hist([1e6, 2e6, 3e6]),
        phases: new Map([['connect', { n: 4, sumNs: 4_000_000 }]]),
      },
      { time: start + 59 * 60_000, counts: [1, 0], hist: hist([7_654_321]) },
      {
        time: start + 60_000 * 3,
        counts: [0, 0],
        hist: new LatencyHistogram(),
        phases: new Map([['my-phase', { n: 2, sumNs: 5000 }]]),
      },
    ].sort((a, b) => a.time - b.time);
    const back = decodeBlock(encodeBlock(start, 60_000, 2, buckets), start, 60_000, 2);
    expect(back.map((b) => [b.time, b.counts])).toEqual(buckets.map((b) => [b.time, b.counts]));
    for (const [k, b] of back.entries()) {
      expect(b.hist.count).toBe(buckets[k]!.hist.count);
      for (const p of [0, 50, 99, 100])
        if (b.hist.count > 0)
          expect(Math.abs(b.hist.percentile(p) - buckets[k]!.hist.percentile(p))).toBeLessThanOrEqual(
            buckets[k]!.hist.percentile(p) * 0.0005,
          );
    }
    expect(back[0]!.phases!.get('connect')).toEqual({ n: 4, sumNs: 4_000_000 });
    expect(back[1]!.phases!.get('my-phase')).toEqual({ n: 2, sumNs: 5000 });
  });

  it('rejects corrupt blocks with an error, not garbage', () => {
    expect(() => decodeBlock(Buffer.from([9, 1, 2]), 0, 60_000, 2)).toThrow(/unknown block format/);
    expect(() => decodeBlock(Buffer.from([3, 5]), 0, 60_000, 2)).toThrow(/truncated/);
  });
});

describe('block formats', () => {
  it('decodes a block of the previous release (format 3/4, 7 flow counts): the new counts read 0', () => {
    const start = 1_700_000_000_000 - (1_700_000_000_000 % 3_600_000);
    const buckets: Bucket[] = [{ time: start, counts: [20, 1, 0, 2, 0, 0, 3], hist: hist([1e6, 2e6]) }];
    const block = encodeBlock(start, 60_000, 7, buckets);
    expect(block[0]).toBe(5);
    // The previous release wrote the same bytes without the leading count of counts, as format 3.
    const old = Buffer.concat([Buffer.from([3]), block.subarray(2)]);
    const back = decodeBlock(old, start, 60_000, 8, 7);
    expect(back[0]!.counts).toEqual([20, 1, 0, 2, 0, 0, 3, 0]);
    expect(back[0]!.hist.count).toBe(2);
    // A new block with 8 counts decodes in full; read with fewer, the extra counts are skipped.
    const now = encodeBlock(start, 60_000, 8, [{ ...buckets[0]!, counts: [20, 1, 0, 2, 0, 0, 3, 4] }]);
    expect(decodeBlock(now, start, 60_000, 8, 7)[0]!.counts).toEqual([20, 1, 0, 2, 0, 0, 3, 4]);
    expect(decodeBlock(now, start, 60_000, 7)[0]!.counts).toEqual([20, 1, 0, 2, 0, 0, 3]);
  });
});

describe('raw probe chunks', () => {
  const t0 = 1_700_000_000_000;
  const runs: StoredProbeRun[] = [
    {
      time: t0,
      ok: true,
      durationNs: 2_345_678,
      phases: { resolve: 234_567, connect: 469_135, tls: 703_703, processing: 703_703, transfer: 234_570 },
      errorCode: null,
      errorMessage: null,
      values: null,
    },
    // Same ms as the one before, no phases, a failure with both strings.
    {
      time: t0,
      ok: false,
      durationNs: 10_000_000_000,
      phases: null,
      errorCode: 'timeout',
      errorMessage: 'no answer within 10s, "quoted"\nnewline',
      values: null,
    },
    // A phase of our own naming, some phases missing, values (fractional, negative, not finite), ns above 2^32.
    {
      time: t0 + 999,
      ok: true,
      durationNs: 9_000_000_000_123,
      phases: { connect: 0, 'my-phase': 5_000_000_000 },
      errorCode: null,
      errorMessage: null,
      values: { status: 200, ratio: 0.125, skew: -3.5, none: NaN },
    },
    // The same error code again, an empty message.
    {
      time: t0 + 3_599_999,
      ok: false,
      durationNs: 0,
      phases: { resolve: 1 },
      errorCode: 'timeout',
      errorMessage: '',
      values: { status: 503 },
    },
  ];

  it('round-trips runs exactly, in their order, with names once per chunk', () => {
    const buf = encodeProbeChunk(runs);
    expect(decodeProbeChunk(buf)).toEqual(runs);
    // One more run of 5 phases (ns of a 2 ms probe, 1 s later): 23 bytes, the names are not repeated.
    const one = encodeProbeChunk([runs[0]!]).length;
    const two = encodeProbeChunk([runs[0]!, { ...runs[0]!, time: t0 + 1000 }]).length;
    expect(two - one).toBe(23);
  });

  it('decodes a time before 1970 and rejects runs out of order, empty chunks and corrupt data', () => {
    const early = { ...runs[0]!, time: -5 };
    expect(decodeProbeChunk(encodeProbeChunk([early]))).toEqual([early]);
    expect(() => encodeProbeChunk([runs[2]!, runs[0]!])).toThrow(/out of time order/);
    expect(() => encodeProbeChunk([])).toThrow(/empty/);
    expect(() => decodeProbeChunk(Buffer.from([7, 1]))).toThrow(/unknown probe chunk format/);
    expect(() => decodeProbeChunk(encodeProbeChunk(runs).subarray(0, 40))).toThrow(/truncated/);
  });
});
