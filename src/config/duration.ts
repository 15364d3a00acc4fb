import { z } from 'zod';
import { parseDuration } from '../core/duration.js';

/** A duration field: `15s`, `500ms`, `1m30s` or a number of seconds; parsed to milliseconds. */
export function durationMs(what = 'a duration') {
  return z.union([z.string(), z.number()]).transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected ${what} like 15s, 500ms or 1m30s (got ${JSON.stringify(v)})`,
      });
      return z.NEVER;
    }
    return ms;
  });
}
