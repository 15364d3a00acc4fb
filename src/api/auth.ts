import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { CoalmineError, ConfigError } from '../core/errors.js';
import { MIN_TOKEN_LENGTH, type ApiConfig, type Scope } from './v1/config.js';

/** The cookie the dashboard's first `?token=` visit leaves behind, so reloads need no token in the URL. */
export const TOKEN_COOKIE = 'coalmine_token';
export const TOKEN_ENV = 'COALMINE_API_TOKEN';

interface StoredToken {
  name: string;
  /** SHA-256 of the token: the token itself is never kept. */
  hash: Buffer;
  scopes: ReadonlySet<Scope>;
}

export type AuthResult =
  | { ok: true; name: string; scopes: ReadonlySet<Scope>; via: 'header' | 'query' | 'cookie'; token: string }
  | { ok: false; reason: 'missing' | 'invalid' | 'malformed' };

/** 32 random bytes, base64url: 256 bits, so hashing it with plain SHA-256 is as good as any KDF. */
export function generateToken(): string {
  return `cm_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export class ListenSafetyError extends CoalmineError {}

/** Whether host (as given to listen) only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h) || h === '0:0:0:0:0:0:0:1';
  return false;
}

/**
 * Refuses (throws ListenSafetyError) to serve the API on an address other machines can reach when no
 * token was configured: a generated token printed to a terminal is fine on loopback, not on a network.
 */
export function checkListenSafety(host: string, tokensConfigured: boolean): void {
  if (tokensConfigured || isLoopbackHost(host)) return;
  throw new ListenSafetyError(
    `refusing to listen on ${host || 'every address'}: it is reachable from other machines and no API token ` +
      `is configured. Set api.tokens in the config or ${TOKEN_ENV} in the environment, or listen on 127.0.0.1`,
  );
}

/** The dashboard URL carrying the token, printed at start as Jupyter does. */
export function dashboardUrl(baseUrl: string, token: string): string {
  const u = new URL(baseUrl);
  u.pathname = '/';
  u.search = '';
  u.searchParams.set('token', token);
  return u.toString();
}

/** Set-Cookie value after a valid `?token=` visit: HttpOnly so page scripts cannot read it. */
export function tokenCookie(token: string): string {
  return `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Bearer tokens with scopes, kept as SHA-256 hashes and compared in constant time. */
export class Auth {
  private readonly tokens: StoredToken[];

  constructor(tokens: readonly { name: string; sha256: Buffer | string; scopes: readonly Scope[] }[]) {
    this.tokens = tokens.map((t) => {
      const hash = typeof t.sha256 === 'string' ? Buffer.from(t.sha256, 'hex') : t.sha256;
      if (hash.length !== 32) throw new CoalmineError(`token ${t.name}: sha256 must be 32 bytes`);
      return { name: t.name, hash, scopes: new Set(t.scopes) };
    });
  }

  get size(): number {
    return this.tokens.length;
  }

  /** The token's holder, or undefined. Every stored hash is compared, so timing says nothing of which. */
  verify(token: string): { name: string; scopes: ReadonlySet<Scope> } | undefined {
    const presented = hashToken(token);
    let found: StoredToken | undefined;
    for (const t of this.tokens) {
      if (timingSafeEqual(presented, t.hash) && found === undefined) found = t;
    }
    return found && { name: found.name, scopes: found.scopes };
  }

  /**
   * Finds the request's token: `Authorization: Bearer`, else `?token=` on GET (EventSource cannot set
   * headers), else the cookie. A header that is present but wrong fails: it is never overridden.
   */
  authenticate(req: IncomingMessage, url: URL): AuthResult {
    const header = req.headers.authorization;
    let token: string | undefined;
    let via: 'header' | 'query' | 'cookie' = 'header';
    if (header !== undefined) {
      const m = /^Bearer[ ]+([\x21-\x7e]+)\s*$/i.exec(header);
      if (!m) return { ok: false, reason: 'malformed' };
      token = m[1]!;
    } else if ((req.method === 'GET' || req.method === 'HEAD') && url.searchParams.has('token')) {
      token = url.searchParams.get('token')!;
      via = 'query';
    } else {
      token = cookieValue(req.headers.cookie, TOKEN_COOKIE);
      via = 'cookie';
    }
    if (token === undefined || token === '') return { ok: false, reason: 'missing' };
    const who = this.verify(token);
    if (!who) return { ok: false, reason: 'invalid' };
    return { ok: true, ...who, via, token };
  }
}

export interface ResolvedAuth {
  auth: Auth;
  /** True when tokens came from the config or the environment (not generated). */
  configured: boolean;
  /** Set when none was configured: the token made at start, to print in the dashboard URL. */
  generatedToken?: string;
}

/**
 * Builds the agent's Auth from `api.tokens` and COALMINE_API_TOKEN (read and write); with neither, makes
 * a fresh random token (read and write) that the caller prints. There is no default token.
 */
export function resolveAuth(
  config: Pick<ApiConfig, 'tokens'> | undefined,
  env: Record<string, string | undefined> = process.env,
): ResolvedAuth {
  const entries: { name: string; sha256: Buffer; scopes: Scope[] }[] = [];
  for (const t of config?.tokens ?? []) {
    entries.push({
      name: t.name,
      sha256: t.sha256 !== undefined ? Buffer.from(t.sha256, 'hex') : hashToken(t.token!),
      scopes: [...t.scopes],
    });
  }
  const fromEnv = env[TOKEN_ENV]?.trim();
  if (fromEnv !== undefined && fromEnv.length > 0 && fromEnv.length < MIN_TOKEN_LENGTH) {
    throw new ConfigError([
      `${TOKEN_ENV} is ${fromEnv.length} characters; a token must be at least ${MIN_TOKEN_LENGTH} characters of random text (openssl rand -hex 32)`,
    ]);
  }
  if (fromEnv) entries.push({ name: 'env', sha256: hashToken(fromEnv), scopes: ['read', 'write'] });
  if (entries.length > 0) return { auth: new Auth(entries), configured: true };
  const generatedToken = generateToken();
  return {
    auth: new Auth([{ name: 'generated', sha256: hashToken(generatedToken), scopes: ['read', 'write'] }]),
    configured: false,
    generatedToken,
  };
}
