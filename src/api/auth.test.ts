import * as crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../core/errors.js';
import {
  Auth,
  checkListenSafety,
  dashboardUrl,
  generateToken,
  hashToken,
  isLoopbackHost,
  ListenSafetyError,
  resolveAuth,
  tokenCookie,
} from './auth.js';
import { apiConfigSchema } from './v1/config.js';

vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});

const READ = 'read-token-0123456789abcdef';
const WRITE = 'write-token-0123456789abcdef';

function request(headers: Record<string, string>, method = 'GET'): IncomingMessage {
  return { headers, method } as unknown as IncomingMessage;
}

function auth(): Auth {
  const cfg = apiConfigSchema.parse({
    tokens: [
      { name: 'reader', token: READ },
      { name: 'writer', sha256: hashToken(WRITE).toString('hex'), scopes: ['read', 'write'] },
    ],
  });
  return resolveAuth(cfg, {}).auth;
}

describe('tokens', () => {
  it('generates 256-bit random tokens, never the same twice', () => {
    const a = generateToken();
    const b = generateToken();
    expect(a).toMatch(/^cm_[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
  });

  it('verifies by SHA-256 hash with timingSafeEqual over every stored hash', () => {
    const a = auth();
    const compare = vi.mocked(crypto.timingSafeEqual);
    compare.mockClear();
    expect(a.verify(READ)).toMatchObject({ name: 'reader' });
    expect([...a.verify(READ)!.scopes]).toEqual(['read']);
    // Both stored hashes were compared, though the first matched: timing does not say which one.
    expect(compare).toHaveBeenCalledTimes(4);
    for (const [x, y] of compare.mock.calls) {
      expect((x as Buffer).length).toBe(32);
      expect((y as Buffer).length).toBe(32);
    }
    expect([...a.verify(WRITE)!.scopes].sort()).toEqual(['read', 'write']);
    expect(a.verify('not-a-token')).toBeUndefined();
    expect(a.verify('')).toBeUndefined();
  });

  it('takes the token from the header, from ?token= on GET only, and from the cookie', () => {
    const a = auth();
    const url = (q = '') => new URL(`http://x/api/v1/targets${q}`);
    expect(a.authenticate(request({ authorization: `Bearer ${READ}` }), url())).toMatchObject({
      ok: true,
      via: 'header',
      name: 'reader',
    });
    expect(a.authenticate(request({}), url(`?token=${WRITE}`))).toMatchObject({ ok: true, via: 'query' });
    expect(a.authenticate(request({}, 'POST'), url(`?token=${WRITE}`))).toEqual({
      ok: false,
      reason: 'missing',
    });
    expect(
      a.authenticate(request({ cookie: `other=1; coalmine_token=${encodeURIComponent(WRITE)}` }), url()),
    ).toMatchObject({ ok: true, via: 'cookie', name: 'writer' });
    expect(a.authenticate(request({}), url())).toEqual({ ok: false, reason: 'missing' });
    expect(a.authenticate(request({ authorization: 'Bearer nope' }), url())).toEqual({
      ok: false,
      reason: 'invalid',
    });
    expect(a.authenticate(request({ authorization: `Basic ${READ}` }), url())).toEqual({
      ok: false,
      reason: 'malformed',
    });
    // A wrong header is not rescued by a right query token.
    expect(a.authenticate(request({ authorization: 'Bearer nope' }), url(`?token=${READ}`))).toMatchObject({
      ok: false,
    });
  });

  it('resolves tokens from the config and COALMINE_API_TOKEN, else generates one', () => {
    const env = resolveAuth(apiConfigSchema.parse({}), { COALMINE_API_TOKEN: WRITE });
    expect(env.configured).toBe(true);
    expect(env.generatedToken).toBeUndefined();
    expect([...env.auth.verify(WRITE)!.scopes].sort()).toEqual(['read', 'write']);

    const none = resolveAuth(undefined, {});
    expect(none.configured).toBe(false);
    expect(none.generatedToken).toMatch(/^cm_/);
    expect(none.auth.verify(none.generatedToken!)).toMatchObject({ name: 'generated' });
    expect(resolveAuth(undefined, {}).generatedToken).not.toBe(none.generatedToken);

    expect(() => resolveAuth(undefined, { COALMINE_API_TOKEN: 'secret' })).toThrow(ConfigError);
  });

  it('makes the Jupyter-style dashboard URL and a strict HttpOnly cookie', () => {
    expect(dashboardUrl('http://127.0.0.1:9777', 'cm_a-b')).toBe('http://127.0.0.1:9777/?token=cm_a-b');
    const cookie = tokenCookie('cm_x');
    expect(cookie).toContain('coalmine_token=cm_x');
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).toContain('Path=/');
  });
});

describe('listen safety', () => {
  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'])
      expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '', '10.0.0.1', '192.168.1.2', 'example.com', '::ffff:10.0.0.1'])
      expect(isLoopbackHost(h), h).toBe(false);
  });

  it('refuses a non-loopback bind without a configured token, and allows it with one', () => {
    expect(() => checkListenSafety('0.0.0.0', false)).toThrow(ListenSafetyError);
    expect(() => checkListenSafety('0.0.0.0', false)).toThrow(/COALMINE_API_TOKEN/);
    expect(() => checkListenSafety('::', false)).toThrow(ListenSafetyError);
    expect(() => checkListenSafety('192.168.1.2', false)).toThrow(/refusing to listen on 192\.168\.1\.2/);
    expect(() => checkListenSafety('0.0.0.0', true)).not.toThrow();
    expect(() => checkListenSafety('127.0.0.1', false)).not.toThrow();
  });
});
