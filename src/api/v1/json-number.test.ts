import { describe, expect, it } from 'vitest';
import { jsonNumber } from './json-number.js';

describe('jsonNumber', () => {
  it('writes what JSON.stringify writes, for seconds of whole nanoseconds and anything else', () => {
    const values: (number | null)[] = [
      null,
      0,
      -0,
      1,
      -1,
      0.98,
      1 / 3,
      Math.PI,
      5e-7,
      1e-6,
      0.000001234,
      0.0005,
      0.1,
      12.5,
      1e9,
      123456.789,
      1e21,
      -0.0015,
      Number.MAX_SAFE_INTEGER,
      Number.NaN,
      Number.POSITIVE_INFINITY,
    ];
    // Whole nanoseconds over 30 orders of e: sub-microsecond to days, as the store's seconds() gives them.
    let seed = 7;
    for (let i = 0; i < 200_000; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      values.push(Math.round(Math.exp((seed / 2 ** 32) * 36)) / 1e9);
    }
    for (let n = 990; n < 1010; n++) values.push(n / 1e9);
    const wrong = values.filter((v) => jsonNumber(v) !== JSON.stringify(v));
    expect(wrong.map((v) => [v, jsonNumber(v)])).toEqual([]);
    // And the fast path was taken: most of them are seconds of whole nanoseconds of 4 to 15 digits.
    expect(values.filter((v) => v !== null && Math.round(v * 1e9) >= 1000 && v < 1e6).length).toBeGreaterThan(
      150_000,
    );
  });
});
