import { describe, expect, it } from 'vitest';
import { HttpError } from './http.js';
import { defaultStep, MAX_POINTS, parseSeriesQuery, parseStep, parseTime } from './query.js';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const q = (s: string) => parseSeriesQuery(new URLSearchParams(s), NOW);

function error(fn: () => unknown): { status: number; code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof HttpError) return { status: e.status, code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected an HttpError');
}

describe('series query', () => {
  it('defaults to the last hour in about 300 points of a round step', () => {
    expect(q('')).toEqual({ from: NOW - 3_600_000, to: NOW, step: 15_000 });
    expect(defaultStep(86_400_000)).toBe(300_000);
    expect(defaultStep(365 * 86_400_000)).toBe(2 * 86_400_000);
  });

  it('takes Unix ms, ISO times and step durations', () => {
    expect(q(`from=${NOW - 600_000}&to=${NOW}&step=1m`)).toEqual({
      from: NOW - 600_000,
      to: NOW,
      step: 60_000,
    });
    expect(parseTime('from', '2025-01-01T12:00:00Z')).toBe(NOW);
    expect(parseTime('from', '2025-01-01T13:00:00+01:00')).toBe(NOW);
    expect(parseStep('500')).toBe(500);
    expect(parseStep('2h')).toBe(7_200_000);
  });

  it('rejects bad times, reversed ranges, tiny steps, too many points and unknown parameters', () => {
    expect(error(() => q('from=yesterday'))).toMatchObject({ status: 400, code: 'invalid_query' });
    expect(error(() => q('from=2025-01-01'))).toMatchObject({ code: 'invalid_query' });
    expect(error(() => q(`from=${NOW}&to=${NOW - 1}`)).message).toMatch(/"from" .* must be before "to"/);
    expect(error(() => q(`from=${NOW}&to=${NOW}`)).code).toBe('invalid_query');
    expect(error(() => q('step=10ms')).message).toMatch(/at least 1000 ms/);
    expect(error(() => q('step=-5')).code).toBe('invalid_query');
    const tooMany = error(() => q(`from=${NOW - 86_400_000}&to=${NOW}&step=1s`));
    expect(tooMany.message).toContain(`86400 points; at most ${MAX_POINTS}`);
    expect(tooMany.message).toContain('step of at least 43200 ms');
    expect(error(() => q(`from=0&to=${NOW}&step=1d`)).message).toMatch(/at most 400 days/);
    expect(error(() => q('form=1'))).toMatchObject({ code: 'unknown_parameter' });
    expect(error(() => q('step=1m&step=2m')).message).toMatch(/given 2 times/);
    // The token parameter belongs to authentication, not to the query.
    expect(q('token=abc').step).toBe(15_000);
  });
});
