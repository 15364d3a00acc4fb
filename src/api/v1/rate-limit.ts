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

export interface CheckBudgetOptions {
  /** Probe runs refilled per second. */
  perSecond: number;
  /** Probe runs allowed at once. */
  burst: number;
  now?: () => number;
}

/**
 * The one budget of probes run on demand, shared by every client and by both check routes (POST /check
 * and POST /api/v1/check): each such run is a real connection to a real target, so a flood of check
 * requests must not turn the agent into a load generator against its targets. A request costs the
 * number of probes it runs; one costing more than the burst is let through when the bucket is full and
 * paid back before the next.
 */
export class CheckBudget {
  private tokens: number;
  private at: number;
  private readonly now: () => number;
  private refusedCount = 0;

  constructor(private readonly opts: CheckBudgetOptions) {
    if (!(opts.perSecond > 0 && opts.burst >= 1))
      throw new RangeError('CheckBudget: need perSecond > 0 and burst >= 1');
    this.now = opts.now ?? (() => performance.now());
    this.tokens = opts.burst;
    this.at = this.now();
  }

  /** Requests refused so far. */
  get refused(): number {
    return this.refusedCount;
  }

  take(probes: number): RateDecision {
    const now = this.now();
    this.tokens = Math.min(this.opts.burst, this.tokens + ((now - this.at) / 1000) * this.opts.perSecond);
    this.at = now;
    const need = Math.min(Math.max(1, probes), this.opts.burst);
    if (this.tokens >= need) {
      this.tokens -= Math.max(1, probes);
      return { ok: true };
    }
    this.refusedCount++;
    return { ok: false, retryAfterMs: ((need - this.tokens) / this.opts.perSecond) * 1000 };
  }
}

/** Default check-now budget: 1 probe a second, 20 at once. */
export const DEFAULT_CHECK_BUDGET = { perSecond: 1, burst: 20 } as const;
