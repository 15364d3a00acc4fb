import { UrlOptions } from '../url-options.js';

/**
 * The query options node-postgres reads from a connection string that mean something here (the rest of
 * the URL goes to it unchanged). Others are refused, so a typo does not pass silently.
 */
const OPTIONS = [
  'sslmode',
  'ssl',
  'sslcert',
  'sslkey',
  'sslrootcert',
  'sslnegotiation',
  'uselibpqcompat',
  'application_name',
  'fallback_application_name',
  'options',
  'host',
  'port',
  'user',
  'password',
  'db',
  'encoding',
  'client_encoding',
] as const;

const SSLMODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'] as const;

/** `postgres[ql]://[user[:pass]@]host[:port][/database][?options]`: every problem with it. */
export function checkUrl(url: string): string[] {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return ['not a valid URL (expected postgres://[user[:pass]@]host[:port][/database][?options])'];
  }
  const scheme = u.protocol.slice(0, -1).toLowerCase();
  if (scheme !== 'postgres' && scheme !== 'postgresql')
    return ['the scheme must be postgres:// or postgresql://'];
  const o = new UrlOptions(u.searchParams, OPTIONS, scheme);
  o.oneOf('sslmode', SSLMODES, 'prefer');
  o.oneOf('ssl', ['true', 'false', '1', '0'], 'false');
  o.oneOf('sslnegotiation', ['postgres', 'direct'], 'postgres');
  o.oneOf('uselibpqcompat', ['true', 'false'], 'false');
  // node-postgres reads these files when the URL is parsed and throws ENOENT with a stack otherwise.
  o.file('sslcert');
  o.file('sslkey');
  o.file('sslrootcert');
  return o.problems;
}

/**
 * node-postgres's own ways to skip the server certificate check: sslmode=no-verify, and sslmode=require
 * or prefer under uselibpqcompat=true (libpq's meaning: encrypt, verify nothing). Without libpq
 * compatibility, require and prefer verify as verify-full does.
 */
export function insecure(url: string): string | undefined {
  let q: URLSearchParams;
  try {
    q = new URL(url).searchParams;
  } catch {
    return undefined;
  }
  const mode = q.get('sslmode');
  const why = 'the server certificate is not verified, so anyone on the path can read and change the traffic';
  if (mode === 'no-verify') return `sslmode=no-verify: ${why}`;
  if (q.get('uselibpqcompat') === 'true' && (mode === 'require' || mode === 'prefer'))
    return `sslmode=${mode} with uselibpqcompat=true: ${why}`;
  return undefined;
}
