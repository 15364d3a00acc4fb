import { describe, expect, it } from 'vitest';
import { UsageError } from '../core/errors.js';
import { logSettings } from './logging.js';

describe('logSettings', () => {
  it('defaults to auto and info', () => {
    expect(logSettings({}, {})).toEqual({ format: 'auto', level: 'info' });
  });

  it('takes the environment, and the flag over it', () => {
    const env = { COALMINE_LOG_FORMAT: 'JSON ', COALMINE_LOG_LEVEL: 'debug' };
    expect(logSettings({}, env)).toEqual({ format: 'json', level: 'debug' });
    expect(logSettings({ logFormat: 'pretty', logLevel: 'error' }, env)).toEqual({
      format: 'pretty',
      level: 'error',
    });
  });

  it('ignores an empty variable and names the variable holding a bad value', () => {
    expect(logSettings({}, { COALMINE_LOG_LEVEL: '' }).level).toBe('info');
    expect(() => logSettings({}, { COALMINE_LOG_LEVEL: 'loud' })).toThrow(
      new UsageError('COALMINE_LOG_LEVEL: expected debug, info, warn or error (got "loud")'),
    );
    // A flag wins, so a bad variable it overrides is no error.
    expect(logSettings({ logFormat: 'json' }, { COALMINE_LOG_FORMAT: 'xml' }).format).toBe('json');
  });
});
