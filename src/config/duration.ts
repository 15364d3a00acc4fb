import { z } from 'zod';
import { parseDuration } from '../core/duration.js';

/** The longest delay Node's timers take (2^31 - 1 ms, about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** An inclusive range of milliseconds a duration field accepts. */
export interface DurationRange {
  min: number;
  max: number;
}

/** Ranges shared by several fields. */
export const DURATION_RANGES = {
  /** How often something runs: fast enough to be useful, slow enough to leave the agent time to work. */
  interval: { min: 100, max: DAY },
  /** How long one run or request may take. */
  timeout: { min: 10, max: DAY },
  /** Any timer: below Node's limit. */
  timer: { min: 0, max: 20 * DAY },
} as const satisfies Record<string, DurationRange>;

/** `ms` the way a person writes it in the config: 100ms, 10s, 24h, 20d. */
export function formatMs(ms: number): string {
  const units: [number, string][] = [
    [DAY, 'd'],
    [HOUR, 'h'],
    [60_000, 'm'],
    [1000, 's'],
  ];
  for (const [size, unit] of units)
    if (ms >= (size === DAY ? 2 * DAY : size) && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** "from 100ms to 24h", for messages and field descriptions. */
export function describeRange(range: DurationRange): string {
  return `from ${formatMs(range.min)} to ${formatMs(range.max)}`;
}

/** What a user wrote, for a message: short, whatever they wrote. */
function shown(v: string | number): string {
  if (typeof v === 'number') return String(v);
  return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
}

/**
 * A duration field: `15s`, `500ms`, `1m30s` or a number of seconds; parsed to milliseconds and checked
 * against `range` (by default anything a timer takes), with a message naming the range.
 */
export function durationMs(what = 'a duration', range: DurationRange = DURATION_RANGES.timer) {
  return z
    .union([z.string(), z.number()], {
      error: () => `expected ${what} like 15s, 500ms or 1m30s`,
    })
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `expected ${what} like 15s, 500ms or 1m30s (got ${shown(v)})`,
        });
        return z.NEVER;
      }
      if (!(ms >= range.min && ms <= range.max)) {
        ctx.addIssue({ code: 'custom', message: `must be ${describeRange(range)} (got ${shown(v)})` });
        return z.NEVER;
      }
      return ms;
    });
}
