import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limit.js';

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
