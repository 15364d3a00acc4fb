/**
 * Ground truth for OTLP exponential histograms, straight from the data model's definition: at scale s,
 * bucket i holds (base^i, base^(i+1)] with base = 2^(2^-s). Found by comparing against the bounds, not
 * by the mapping the code under test uses.
 */
export function definitionIndex(v: number, scale: number): number {
  const bound = (i: number) => 2 ** (i / 2 ** scale);
  let i = Math.round(Math.log2(v) * 2 ** scale);
  while (!(bound(i) < v)) i--;
  while (!(v <= bound(i + 1))) i++;
  return i;
}

/** Bucket counts keyed by index, as the definition places the positive `values` at `scale`. */
export function definitionBuckets(values: readonly number[], scale: number): Map<number, number> {
  const m = new Map<number, number>();
  for (const v of values)
    if (v > 0) {
      const i = definitionIndex(v, scale);
      m.set(i, (m.get(i) ?? 0) + 1);
    }
  return m;
}

/** The largest scale (at most 20) at which the positive `values` span at most `maxBuckets` buckets. */
export function definitionScale(values: readonly number[], maxBuckets: number): number {
  const positive = values.filter((v) => v > 0);
  for (let scale = 20; ; scale--) {
    const idx = positive.map((v) => definitionIndex(v, scale));
    if (Math.max(...idx) - Math.min(...idx) + 1 <= maxBuckets) return scale;
  }
}

/** Bucket counts keyed by index from an OTLP point's offset and counts; zero counts left out. */
export function bucketsByIndex(offset: number, bucketCounts: readonly number[]): Map<number, number> {
  const m = new Map<number, number>();
  bucketCounts.forEach((c, i) => c > 0 && m.set(offset + i, c));
  return m;
}
