import { describe, expect, it } from 'vitest';
import { storeConfigSchema } from './config.js';
import { parseStoreSpec } from './open.js';

const DAY = 86_400_000;

describe('store config', () => {
  it('defaults to SQLite in ./data with 7d / 90d / 2y retention', () => {
    expect(storeConfigSchema.parse({})).toEqual({
      url: 'sqlite:./data/coalmine.db',
      retention: { raw: 7 * DAY, '1m': 90 * DAY, '1h': 730 * DAY },
    });
  });
  it('accepts durations, weeks and years, and rejects nonsense with the field named', () => {
    expect(storeConfigSchema.parse({ retention: { raw: '36h', '1m': '2w', '1h': '1y' } }).retention).toEqual({
      raw: 36 * 3_600_000,
      '1m': 14 * DAY,
      '1h': 365 * DAY,
    });
    const bad = storeConfigSchema.safeParse({ retention: { raw: 'forever' }, extra: 1 });
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toContain('retention.raw');
    expect(bad.error!.issues.find((i) => i.path.join('.') === 'retention.raw')!.message).toMatch(/like 7d/);
    expect(storeConfigSchema.safeParse({ retention: { raw: 0 } }).success).toBe(false);
  });
  it('parses store specs', () => {
    expect(parseStoreSpec('sqlite:/tmp/x.db')).toEqual({ engine: 'sqlite', file: '/tmp/x.db' });
    expect(parseStoreSpec('/tmp/data-dir-that-does-not-exist')).toEqual({
      engine: 'sqlite',
      file: '/tmp/data-dir-that-does-not-exist/coalmine.db',
    });
    expect(parseStoreSpec('/tmp')).toEqual({ engine: 'sqlite', file: '/tmp/coalmine.db' });
    expect(parseStoreSpec('postgres://u@h:5432/db?schema=s1')).toEqual({
      engine: 'postgres',
      url: 'postgres://u@h:5432/db',
      schema: 's1',
    });
    expect(() => parseStoreSpec('')).toThrow(/empty spec/);
    expect(() => parseStoreSpec('redis://h')).toThrow(/unknown engine "redis"/);
    expect(() => parseStoreSpec('sqlite:')).toThrow(/no path/);
    expect(() => parseStoreSpec('postgres://:pw@/db')).toThrow(/no host|not a valid URL/);
  });
});
