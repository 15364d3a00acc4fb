export interface RateLimitOptions {
  /** Tokens refilled per second. */
  perSecond: number;
  /** Bucket size: requests allowed at once. */
  burst: number;
  /** Most clients tracked; the least recently seen is forgotten beyond it (it starts with a full bucket). */
  maxClients?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export type RateDecision = { ok: true } | { ok: false; retryAfterMs: number };

/** A token bucket per client key (the remote address), in a bounded LRU map. */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxClients: number;
  private readonly now: () => number;
  private limitedCount = 0;

  constructor(private readonly opts: RateLimitOptions) {
    this.maxClients = opts.maxClients ?? 10_000;
    this.now = opts.now ?? (() => performance.now());
  }

  /** Requests refused so far. */
  get limited(): number {
    return this.limitedCount;
  }

  get clients(): number {
    return this.buckets.size;
  }

  take(key: string): RateDecision {
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.opts.burst, at: now };
    this.buckets.delete(key);
    b.tokens = Math.min(this.opts.burst, b.tokens + ((now - b.at) / 1000) * this.opts.perSecond);
    b.at = now;
    this.buckets.set(key, b);
    if (this.buckets.size > this.maxClients) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    this.limitedCount++;
    return { ok: false, retryAfterMs: ((1 - b.tokens) / this.opts.perSecond) * 1000 };
  }
}
