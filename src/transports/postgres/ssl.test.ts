import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { pgConnectionString } from './index.js';

// node-postgres's own parser of connection strings, as the transport's client reads the URL.
const { parse } = createRequire(import.meta.url)('pg-connection-string') as {
  parse(url: string): { ssl?: unknown; host?: string | null; database?: string | null };
};

describe('postgres ssl=', () => {
  it('ssl=false turns TLS off, as config check promises (node-postgres alone keeps "false", which is on)', () => {
    const url = 'postgres://u@127.0.0.1:5432/test?ssl=false&application_name=x';
    expect(parse(url).ssl).toBe('false');
    const canonical = pgConnectionString(url);
    expect(parse(canonical).ssl).toBe(false);
    expect(parse(canonical)).toMatchObject({ host: '127.0.0.1', database: 'test' });
    expect(new URL(canonical).searchParams.get('application_name')).toBe('x');
  });

  it('leaves every other form as node-postgres reads it', () => {
    for (const [v, ssl] of [
      ['true', true],
      ['1', true],
      ['0', false],
    ] as const) {
      const url = `postgres://u@127.0.0.1/test?ssl=${v}`;
      expect(pgConnectionString(url)).toBe(url);
      expect(parse(url).ssl).toBe(ssl);
    }
    expect(pgConnectionString('postgres://u@127.0.0.1/test')).toBe('postgres://u@127.0.0.1/test');
  });
});
