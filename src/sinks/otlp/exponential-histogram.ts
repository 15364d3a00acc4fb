/**
 * OpenTelemetry's base-2 exponential histogram of non-negative values, as the metrics SDKs aggregate it.
 *
 * At scale `s` the base is 2^(2^-s) and bucket `i` holds the values in (base^i, base^(i+1)]: upper bound
 * inclusive, so an exact power of two closes its bucket. A histogram starts at scale 20 and, when a value
 * would make it wider than `maxBuckets`, lowers its scale by as little as keeps every value within that
 * many buckets; lowering the scale by one merges buckets 2i and 2i+1 into i, so nothing recorded is
 * moved to a wrong bucket. Zero goes to the zero bucket (zero threshold 0).
 */
export const MAX_SCALE = 20;
export const DEFAULT_MAX_BUCKETS = 160;
const MIN_MAX_BUCKETS = 4;

const bits = new DataView(new ArrayBuffer(8));

/**
 * The index of the bucket holding `value` (> 0, finite) at `scale`. Exact for powers of two (read from
 * the float's bits); elsewhere log2 is correctly rounded to an ulp, which only matters for a value within
 * an ulp of an irrational bucket boundary, as for every SDK.
 */
export function bucketIndex(value: number, scale: number): number {
  bits.setFloat64(0, value);
  const hi = bits.getUint32(0);
  const biased = (hi >>> 20) & 0x7ff;
  if (biased !== 0) {
    const exponent = biased - 1023;
    const powerOfTwo = (hi & 0xfffff) === 0 && bits.getUint32(4) === 0;
    if (scale <= 0) return (powerOfTwo ? exponent - 1 : exponent) >> -scale;
    if (powerOfTwo) return (exponent << scale) - 1;
    return Math.floor(Math.log2(value) * 2 ** scale);
  }
  // Subnormal: no exponent to read, so the definition directly.
  return Math.ceil(Math.log2(value) * 2 ** scale) - 1;
}

/** What an export carries: the fields of an OTLP ExponentialHistogramDataPoint. */
export interface ExponentialHistogramSnapshot {
  count: number;
  sum: number;
  /** Undefined when nothing was recorded. */
  min: number | undefined;
  max: number | undefined;
  scale: number;
  zeroCount: number;
  /** Bucket `offset + i` holds `bucketCounts[i]` values; the first and last counts are never 0. */
  positive: { offset: number; bucketCounts: number[] };
}

export class ExponentialHistogram {
  private scaleNow = MAX_SCALE;
  private offset = 0;
  /** counts[i] is bucket offset + i; empty until a positive value arrives. */
  private counts: number[] = [];
  private n = 0;
  private total = 0;
  private zeros = 0;
  private lo = Infinity;
  private hi = -Infinity;

  constructor(readonly maxBuckets = DEFAULT_MAX_BUCKETS) {
    if (!Number.isInteger(maxBuckets) || maxBuckets < MIN_MAX_BUCKETS)
      throw new RangeError(
        `maxBuckets must be an integer of at least ${MIN_MAX_BUCKETS} (got ${maxBuckets})`,
      );
  }

  get count(): number {
    return this.n;
  }

  get scale(): number {
    return this.scaleNow;
  }

  /** Records a value; NaN, infinities and negative values are refused (returns false). */
  record(value: number): boolean {
    if (!(value >= 0) || value === Infinity) return false;
    this.n++;
    this.total += value;
    if (value < this.lo) this.lo = value;
    if (value > this.hi) this.hi = value;
    if (value === 0) {
      this.zeros++;
      return true;
    }
    let index = bucketIndex(value, this.scaleNow);
    const counts = this.counts;
    if (counts.length === 0) {
      this.offset = index;
      counts.push(1);
      return true;
    }
    const first = this.offset;
    const last = first + counts.length - 1;
    if (index < first || index > last) {
      const low = Math.min(index, first);
      const high = Math.max(index, last);
      let change = 0;
      while ((high >> change) - (low >> change) + 1 > this.maxBuckets) change++;
      if (change > 0) {
        this.downscale(change);
        index >>= change;
      }
      this.widen(index);
    }
    this.counts[index - this.offset]!++;
    return true;
  }

  snapshot(): ExponentialHistogramSnapshot {
    return {
      count: this.n,
      sum: this.total,
      min: this.n > 0 ? this.lo : undefined,
      max: this.n > 0 ? this.hi : undefined,
      scale: this.scaleNow,
      zeroCount: this.zeros,
      positive: { offset: this.counts.length > 0 ? this.offset : 0, bucketCounts: [...this.counts] },
    };
  }

  /** Lowers the scale by `change`: bucket i becomes i >> change, and counts that meet are added. */
  private downscale(change: number): void {
    const offset = this.offset >> change;
    const merged = new Array<number>(((this.offset + this.counts.length - 1) >> change) - offset + 1).fill(0);
    this.counts.forEach((c, i) => (merged[((this.offset + i) >> change) - offset]! += c));
    this.counts = merged;
    this.offset = offset;
    this.scaleNow -= change;
  }

  /** Makes room for bucket `index` (within maxBuckets of every other, as record checked). */
  private widen(index: number): void {
    if (index < this.offset) {
      this.counts = [...new Array<number>(this.offset - index).fill(0), ...this.counts];
      this.offset = index;
    } else {
      while (this.offset + this.counts.length <= index) this.counts.push(0);
    }
  }
}
