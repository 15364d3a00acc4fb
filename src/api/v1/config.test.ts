import { describe, expect, it } from 'vitest';
import { apiConfigSchema } from './config.js';

const TOKEN = 'x'.repeat(32);

function problems(input: unknown): string[] {
  const r = apiConfigSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('apiConfigSchema', () => {
  it('accepts tokens by value or by hash, with read as the default scope', () => {
    const cfg = apiConfigSchema.parse({
      tokens: [
        { name: 'ci', token: TOKEN },
        { name: 'ops', sha256: 'a'.repeat(64), scopes: ['read', 'write'] },
      ],
      rateLimit: { perSecond: 5 },
    });
    expect(cfg.tokens[0]!.scopes).toEqual(['read']);
    expect(cfg.tokens[1]!.scopes).toEqual(['read', 'write']);
    expect(cfg.rateLimit).toEqual({ perSecond: 5, burst: 100 });
    expect(apiConfigSchema.parse({}).tokens).toEqual([]);
  });

  it('says what is wrong with a bad token entry', () => {
    expect(problems({ tokens: [{ name: 'a', token: 'hunter2' }] })).toEqual([
      expect.stringMatching(/^tokens\.0\.token: a token must be at least 20 characters/),
    ]);
    expect(problems({ tokens: [{ name: 'a', token: TOKEN, sha256: 'a'.repeat(64) }] })).toEqual([
      'tokens.0: give exactly one of token or sha256',
    ]);
    expect(problems({ tokens: [{ name: 'a' }] })).toEqual(['tokens.0: give exactly one of token or sha256']);
    expect(problems({ tokens: [{ name: 'a', sha256: 'abc' }] })).toEqual([
      'tokens.0.sha256: sha256 is the 64 hex digits of the SHA-256 of the token',
    ]);
    expect(problems({ tokens: [{ name: 'a', token: TOKEN, scopes: ['admin'] }] })[0]).toMatch(
      /^tokens\.0\.scopes\.0:/,
    );
    expect(
      problems({
        tokens: [
          { name: 'a', token: TOKEN },
          { name: 'a', token: TOKEN + 'y' },
        ],
      }),
    ).toEqual(['tokens: token names must be unique']);
    expect(problems({ password: 'x' })[0]).toMatch(/password/);
  });
});
