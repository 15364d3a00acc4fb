import { describe, expect, it } from 'vitest';
import {
  boundedTest,
  REGEX_TIME_LIMIT_MS,
  RegexTimeLimitError,
  withRegexTimeLimit,
} from './bounded-regex.js';

describe('withRegexTimeLimit', () => {
  it('returns what the check returns', () => {
    expect(boundedTest(/ok/, 'status: ok')).toBe(true);
    expect(boundedTest(/^down$/, 'status: ok')).toBe(false);
    expect(withRegexTimeLimit('x', () => /(\d+)/.exec('a42')?.[1])).toBe('42');
  });

  it('stops a backtracking regex on a hostile text after the limit, and works again after', () => {
    // Without the limit: about 30 minutes on one line of 1 MiB.
    const text = 'a'.repeat(1 << 20);
    const t0 = performance.now();
    expect(() => boundedTest(/.*foo.*/, text)).toThrow(RegexTimeLimitError);
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(REGEX_TIME_LIMIT_MS - 5);
    expect(elapsed).toBeLessThan(REGEX_TIME_LIMIT_MS + 500);
    expect(boundedTest(/foo/, `${'a'.repeat(100)}foo`)).toBe(true);
  });

  it('says which pattern ran out of time and how to fix it', () => {
    const err = (() => {
      try {
        boundedTest(/(a|aa)+$/, `${'a'.repeat(40)}b`);
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err?.message).toMatch(/^the regular expression \/\(a\|aa\)\+\$\/ took over 50 ms .*anchor it/);
  });

  it('lets other errors through', () => {
    expect(() =>
      withRegexTimeLimit('x', () => {
        throw new TypeError('boom');
      }),
    ).toThrow(TypeError);
  });
});
