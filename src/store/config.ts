import { z } from 'zod';
import { describeRange, durationMs } from '../config/duration.js';

/** How long each tier is kept, in ms. */
export interface Retention {
  raw: number;
  '1m': number;
  '1h': number;
}

const DAY = 86_400_000;
export const DEFAULT_RETENTION: Retention = { raw: 7 * DAY, '1m': 90 * DAY, '1h': 730 * DAY };
export const DEFAULT_STORE_URL = 'sqlite:./data/coalmine.db';
/** Retention of any tier: at least an hour (a rollup has to happen), at most a century. */
const RETENTION_RANGE = { min: 3_600_000, max: 36_500 * DAY };

/**
 * A retention duration: anything durationMs accepts, plus weeks and years (`2w`, `2y`, a year being
 * 365 days), which the shared duration parser does not know and retention needs.
 */
function retentionDuration(what: string) {
  return z.preprocess(
    (v) => {
      if (typeof v !== 'string') return v;
      const m = /^\s*(\d+(?:\.\d+)?)\s*(y|w)\s*$/.exec(v);
      if (!m) return v;
      return `${Number(m[1]) * (m[2] === 'y' ? 365 : 7)}d`;
    },
    durationMs(what, RETENTION_RANGE),
  );
}

export const retentionSchema = z
  .object({
    raw: retentionDuration('a retention like 7d').default(DEFAULT_RETENTION.raw),
    '1m': retentionDuration('a retention like 90d').default(DEFAULT_RETENTION['1m']),
    '1h': retentionDuration('a retention like 2y').default(DEFAULT_RETENTION['1h']),
  })
  .strict()
  .describe(
    `How long each tier is kept, ${describeRange(RETENTION_RANGE)}: raw results, 1-minute and 1-hour rollups`,
  );

/** The top-level `store:` config section. */
export const storeConfigSchema = z
  .object({
    url: z
      .string()
      .min(1)
      .default(DEFAULT_STORE_URL)
      .describe('sqlite:PATH, a directory (SQLite file coalmine.db inside it) or postgres://user@host/db'),
    retention: retentionSchema.default({
      raw: DEFAULT_RETENTION.raw,
      '1m': DEFAULT_RETENTION['1m'],
      '1h': DEFAULT_RETENTION['1h'],
    }),
  })
  .strict()
  .describe('The results store');

export type StoreConfig = z.output<typeof storeConfigSchema>;
