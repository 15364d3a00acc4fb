import { describe, expect, it } from 'vitest';
import { CheckBudget, RateLimiter } from './rate-limit.js';

describe('RateLimiter', () => {
  it('allows a burst, then refills at the rate, per client', () => {
    let now = 0;
    const rl = new RateLimiter({ perSecond: 2, burst: 3, now: () => now });
    expect([rl.take('a'), rl.take('a'), rl.take('a')].every((d) => d.ok)).toBe(true);
    const refused = rl.take('a');
    expect(refused).toEqual({ ok: false, retryAfterMs: 500 });
    expect(rl.take('b').ok).toBe(true);
    now = 499;
    expect(rl.take('a').ok).toBe(false);
    now = 1000;
    expect(rl.take('a').ok).toBe(true);
    expect(rl.limited).toBe(2);
  });

  it('forgets the least recently seen client beyond its bound', () => {
    const rl = new RateLimiter({ perSecond: 1, burst: 1, maxClients: 2, now: () => 0 });
    rl.take('a');
    rl.take('b');
    rl.take('c');
    expect(rl.clients).toBe(2);
    expect(rl.take('a').ok).toBe(true); // forgotten, so a fresh bucket
    expect(rl.take('c').ok).toBe(false);
  });
});

describe('CheckBudget', () => {
  it('charges each request the probes it runs, and lets one larger than the burst through when full', () => {
    let now = 0;
    const b = new CheckBudget({ perSecond: 2, burst: 4, now: () => now });
    expect(b.take(3).ok).toBe(true);
    expect(b.take(2)).toEqual({ ok: false, retryAfterMs: 500 });
    expect(b.take(1).ok).toBe(true);
    now = 2000; // full again
    // Ten probes with a burst of four: allowed, and paid back (6 over, 1 more for the next) first.
    expect(b.take(10).ok).toBe(true);
    now = 5499;
    expect(b.take(1).ok).toBe(false);
    now = 5500;
    expect(b.take(1).ok).toBe(true);
    expect(b.refused).toBe(2);
  });
});
