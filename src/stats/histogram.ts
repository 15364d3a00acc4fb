/**
 * An HDR-style latency histogram of non-negative integer nanoseconds: values below 2048 ns are kept
 * exactly, larger ones in log-linear buckets 1/1024 of their magnitude wide, so every percentile is
 * within 0.1 % of the true value. Sparse (a Map), mergeable, and serialisable for storage.
 */
export class LatencyHistogram {
  private readonly counts = new Map<number, number>();
  private n = 0;
  private minV = Infinity;
  private maxV = 0;
  private sumV = 0;

  get count(): number {
    return this.n;
  }
  get min(): number {
    return this.n === 0 ? NaN : this.minV;
  }
  get max(): number {
    return this.n === 0 ? NaN : this.maxV;
  }
  get mean(): number {
    return this.n === 0 ? NaN : this.sumV / this.n;
  }

  record(valueNs: number, count = 1): void {
    const v = valueNs < 0 ? 0 : Math.round(valueNs);
    const i = indexOf(v);
    this.counts.set(i, (this.counts.get(i) ?? 0) + count);
    this.n += count;
    this.sumV += v * count;
    if (v < this.minV) this.minV = v;
    if (v > this.maxV) this.maxV = v;
  }

  merge(other: LatencyHistogram): void {
    for (const [i, c] of other.counts) this.counts.set(i, (this.counts.get(i) ?? 0) + c);
    this.n += other.n;
    this.sumV += other.sumV;
    if (other.n > 0) {
      this.minV = Math.min(this.minV, other.minV);
      this.maxV = Math.max(this.maxV, other.maxV);
    }
  }

  reset(): void {
    this.counts.clear();
    this.n = 0;
    this.minV = Infinity;
    this.maxV = 0;
    this.sumV = 0;
  }

  /** The value at percentile p (0-100): the smallest recorded value with at least p % at or below it. */
  percentile(p: number): number {
    if (this.n === 0) return NaN;
    if (p <= 0) return this.minV;
    if (p >= 100) return this.maxV;
    const rank = Math.max(1, Math.ceil((p / 100) * this.n));
    const keys = [...this.counts.keys()].sort((a, b) => a - b);
    let seen = 0;
    for (const k of keys) {
      seen += this.counts.get(k)!;
      if (seen >= rank) return Math.min(this.maxV, Math.max(this.minV, representative(k)));
    }
    return this.maxV;
  }

  /** Compact form for storage: [index, count] pairs plus the exact min, max and sum. */
  toJSON(): { b: [number, number][]; n: number; min: number; max: number; sum: number } {
    return { b: [...this.counts], n: this.n, min: this.min, max: this.max, sum: this.sumV };
  }

  static fromJSON(j: {
    b: [number, number][];
    n: number;
    min: number;
    max: number;
    sum: number;
  }): LatencyHistogram {
    const h = new LatencyHistogram();
    for (const [i, c] of j.b) h.counts.set(i, c);
    h.n = j.n;
    h.sumV = j.sum;
    if (j.n > 0) {
      h.minV = j.min;
      h.maxV = j.max;
    }
    return h;
  }
}

const EXACT = 2048;
const HALF = 1024;

function indexOf(v: number): number {
  if (v < EXACT) return v;
  if (v < 4_294_967_296) {
    // Below 2^32 ns (4.3 s), the exact integer way: clz32 is one instruction, log2 and 2 ** e are not, and
    // this runs for every ping a coalminer receives (three times).
    const e = 21 - Math.clz32(v);
    return EXACT + (e - 1) * HALF + ((v >>> e) - HALF);
  }
  let e = Math.floor(Math.log2(v)) - 10;
  let sub = Math.floor(v / 2 ** e);
  // Math.log2 can be off by one at exact powers of two; keep sub in [1024, 2048).
  if (sub >= EXACT) sub = Math.floor(v / 2 ** ++e);
  else if (sub < HALF) sub = Math.floor(v / 2 ** --e);
  return EXACT + (e - 1) * HALF + (sub - HALF);
}

/** The bucket index of a value (ns, a non-negative integer), as record() files it. */
export { indexOf as bucketIndex };

/** The middle of bucket i's range (exact below 2048). */
function representative(i: number): number {
  if (i < EXACT) return i;
  const e = Math.floor((i - EXACT) / HALF) + 1;
  const sub = ((i - EXACT) % HALF) + HALF;
  return sub * 2 ** e + (2 ** e - 1) / 2;
}

/**
 * Histograms over a rolling window: one histogram per slot (e.g. 10 s), the last N slots kept, merged on
 * query. Memory is bounded by slots x distinct buckets.
 */
export class RollingHistogram {
  private readonly slots: { start: number; h: LatencyHistogram }[] = [];

  constructor(
    private readonly slotMs = 10_000,
    private readonly keepSlots = 30,
  ) {}

  record(valueNs: number, nowMs: number): void {
    const start = nowMs - (nowMs % this.slotMs);
    let last = this.slots.at(-1);
    if (!last || last.start !== start) {
      last = { start, h: new LatencyHistogram() };
      this.slots.push(last);
      while (this.slots.length > this.keepSlots) this.slots.shift();
    }
    last.h.record(valueNs);
  }

  /** Everything recorded within the last `windowMs` (whole slots). */
  window(windowMs: number, nowMs: number): LatencyHistogram {
    const from = nowMs - windowMs;
    const out = new LatencyHistogram();
    for (const s of this.slots) if (s.start + this.slotMs > from) out.merge(s.h);
    return out;
  }
}
