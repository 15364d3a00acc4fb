import { describe, expect, it } from 'vitest';
import { DeliveryQueue } from './base.js';

async function drain(q: DeliveryQueue<number>): Promise<number[]> {
  q.end();
  const out: number[] = [];
  for await (const v of q) out.push(v);
  return out;
}

describe('DeliveryQueue', () => {
  it('keeps order through growth and wrap-around, and drops the oldest past its bound', async () => {
    const q = new DeliveryQueue<number>(100);
    const it = q[Symbol.asyncIterator]();
    for (let i = 0; i < 70; i++) q.push(i);
    // Take some, so the ring wraps when it fills again.
    for (let i = 0; i < 50; i++) expect((await it.next()).value).toBe(i);
    for (let i = 70; i < 250; i++) q.push(i);
    expect(q.dropped).toBe(100);
    expect(q.length).toBe(100);
    const rest: number[] = [];
    q.end();
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    expect(rest).toEqual(Array.from({ length: 100 }, (_, i) => 150 + i));
  });

  it('takes a flood in time linear in its size', async () => {
    const timeFor = (n: number) => {
      const q = new DeliveryQueue<number>(n / 2);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) q.push(i);
      return { ms: performance.now() - t0, q };
    };
    timeFor(200_000); // warm up
    const small = timeFor(200_000);
    const big = timeFor(1_600_000);
    expect(big.q.dropped).toBe(800_000);
    // 8x the messages: about 8x the time, far from the 64x of a quadratic queue.
    expect(big.ms / Math.max(small.ms, 0.5)).toBeLessThan(32);
    expect((await drain(big.q)).length).toBe(800_000);
  });

  it('drain() hands over every message in order, those that wait and those that come, until end()', async () => {
    const q = new DeliveryQueue<number>(1000);
    for (let i = 0; i < 5; i++) q.push(i);
    const seen: number[] = [];
    const done = q.drain((v) => seen.push(v));
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    for (let i = 5; i < 10; i++) q.push(i);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    q.push(10);
    q.end();
    q.push(11); // after end(): not taken
    await done;
    expect(seen.at(-1)).toBe(10);
  });
});
