import { formatValue } from './exposition.js';

/**
 * One histogram series kept in place (counts per bucket, sum, count) and written as text lines, as
 * prom-client's Histogram writes them: cumulative `_bucket{le,...}` lines, `+Inf`, `_sum`, `_count`.
 * An observation only adds to numbers; nothing is allocated per run.
 */
export class HistogramCell {
  /** Observations per bucket, not cumulative; the last is above every bound. */
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: HistogramBounds) {
    this.counts = new Float64Array(bounds.upper.length + 1);
  }

  observe(value: number): void {
    const upper = this.bounds.upper;
    // The first bucket whose bound is at least the value (`le`), by bisection.
    let lo = 0;
    let hi = upper.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (value <= upper[mid]!) hi = mid;
      else lo = mid + 1;
    }
    this.counts[lo]!++;
    this.sum += value;
    this.count++;
  }

  get observations(): number {
    return this.count;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  /** The series' lines under `labels` (already escaped `a="x",b="y"`, or '' for none). */
  lines(labels: string): string {
    const { name, le } = this.bounds;
    const tail = labels === '' ? '' : `,${labels}`;
    const braces = labels === '' ? '' : `{${labels}}`;
    let out = '';
    let acc = 0;
    for (let i = 0; i < le.length; i++) {
      acc += this.counts[i]!;
      out += `${name}_bucket{${le[i]}${tail}} ${acc}\n`;
    }
    out += `${name}_bucket{le="+Inf"${tail}} ${this.count}\n`;
    out += `${name}_sum${braces} ${formatValue(this.sum)}\n`;
    out += `${name}_count${braces} ${this.count}\n`;
    return out;
  }
}

/** A histogram family's name and bucket bounds, with each bound's `le="..."` written once. */
export class HistogramBounds {
  readonly le: readonly string[];

  constructor(
    readonly name: string,
    readonly upper: readonly number[],
  ) {
    this.le = upper.map((b) => `le="${formatValue(b)}"`);
  }
}
