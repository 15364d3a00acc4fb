import { HttpError } from './http.js';
import type { SeriesQuery } from './context.js';

export const MAX_POINTS = 2000;
export const DEFAULT_POINTS = 300;
export const MIN_STEP_MS = 1000;
/** Longest range one request may ask for: a bit over a year. */
export const MAX_RANGE_MS = 400 * 86_400_000;
const HOUR_MS = 3_600_000;

/** Steps a default is rounded up to, so points line up with rollup buckets and clock minutes. */
const NICE_STEPS_MS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
].map((s) => s * 1000);

export function badQuery(message: string): HttpError {
  return new HttpError(400, 'invalid_query', message);
}

/** Rejects any parameter not listed: a typo (`form=`) must not silently mean the default. */
export function allowOnly(params: URLSearchParams, allowed: readonly string[]): void {
  for (const key of new Set(params.keys())) {
    if (key === 'token') continue;
    if (!allowed.includes(key)) {
      throw new HttpError(
        400,
        'unknown_parameter',
        allowed.length > 0
          ? `unknown query parameter "${key}" (allowed: ${allowed.join(', ')})`
          : `unknown query parameter "${key}" (this endpoint takes none)`,
      );
    }
  }
}

/** One value of a parameter; a repeated one is an error. */
export function single(params: URLSearchParams, key: string): string | undefined {
  const all = params.getAll(key);
  if (all.length > 1) throw badQuery(`"${key}" is given ${all.length} times; give it once`);
  return all[0];
}

/** A time: Unix milliseconds, or an ISO 8601 date-time with a zone (2025-01-02T03:04:05Z). */
export function parseTime(key: string, raw: string): number {
  if (/^\d{1,15}$/.test(raw)) return Number(raw);
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(raw)) {
    const t = Date.parse(raw);
    if (Number.isFinite(t)) return t;
  }
  throw badQuery(
    `"${key}" must be Unix milliseconds or an ISO 8601 time with a zone (2025-01-02T03:04:05Z), not ${JSON.stringify(raw.slice(0, 40))}`,
  );
}

/** A step: milliseconds, or a duration such as 30s, 5m, 1h, 1d. */
export function parseStep(raw: string): number {
  const m = /^(\d{1,12})(ms|s|m|h|d)?$/.exec(raw);
  if (!m)
    throw badQuery(
      `"step" must be milliseconds or a duration like 30s, 5m, 1h; not ${JSON.stringify(raw.slice(0, 40))}`,
    );
  const unit = { ms: 1, s: 1000, m: 60_000, h: HOUR_MS, d: 86_400_000 }[m[2] ?? 'ms']!;
  return Number(m[1]) * unit;
}

/** The default step for a range: the smallest nice step giving at most DEFAULT_POINTS points. */
export function defaultStep(rangeMs: number): number {
  for (const s of NICE_STEPS_MS) if (Math.ceil(rangeMs / s) <= DEFAULT_POINTS) return s;
  return Math.ceil(rangeMs / DEFAULT_POINTS / 86_400_000) * 86_400_000;
}

export interface RangeOptions {
  now: number;
  /** Default length of the range when `from` is not given. */
  defaultRangeMs?: number;
}

/** from and to (defaults: to = now, from = to - 1 h), checked for order and length. */
export function parseRange(params: URLSearchParams, opts: RangeOptions): { from: number; to: number } {
  const toRaw = single(params, 'to');
  const fromRaw = single(params, 'from');
  const to = toRaw === undefined ? opts.now : parseTime('to', toRaw);
  const from = fromRaw === undefined ? to - (opts.defaultRangeMs ?? HOUR_MS) : parseTime('from', fromRaw);
  if (from >= to) throw badQuery(`"from" (${from}) must be before "to" (${to})`);
  if (to - from > MAX_RANGE_MS) {
    throw badQuery(`the range is ${Math.round((to - from) / 86_400_000)} days; at most 400 days at once`);
  }
  return { from, to };
}

/** from, to and step of a series request, with at most MAX_POINTS points. */
export function parseSeriesQuery(params: URLSearchParams, now: number): SeriesQuery {
  allowOnly(params, ['from', 'to', 'step']);
  const { from, to } = parseRange(params, { now });
  const stepRaw = single(params, 'step');
  const step = stepRaw === undefined ? defaultStep(to - from) : parseStep(stepRaw);
  if (step < MIN_STEP_MS) throw badQuery(`"step" must be at least ${MIN_STEP_MS} ms, not ${step}`);
  const points = Math.ceil((to - from) / step);
  if (points > MAX_POINTS) {
    throw badQuery(
      `a step of ${step} ms over ${to - from} ms gives ${points} points; at most ${MAX_POINTS}: use a step of at least ${Math.ceil((to - from) / MAX_POINTS)} ms`,
    );
  }
  return { from, to, step };
}
