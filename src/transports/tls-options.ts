/**
 * The TLS and credential options the amqps://, rediss:// and mqtts:// URLs spell the same way (and
 * Kafka's and NATS's with them):
 *
 *   ca=/path/ca.pem        trust this CA (PEM) instead of the system's
 *   cert=/path/client.pem  client certificate (PEM), with key=
 *   key=/path/client.key   its private key (PEM, unencrypted)
 *   servername=NAME        the name the server certificate must carry, also sent as SNI (default: the
 *                          URL's host; an IP address is checked against the certificate's IP entries)
 *   insecure=1             do not verify the server certificate at all (logged as a warning)
 *   passwordEnv=NAME       take the password from environment variable NAME instead of the URL
 *
 * Read without any client library, so `config check` runs the same checks as a connect.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { UrlOptions } from './url-options.js';

/** TLS options, only on the TLS scheme. */
export const TLS_OPTIONS = ['ca', 'cert', 'key', 'servername', 'insecure'] as const;
/** Credential options, on every scheme. */
export const CREDENTIAL_OPTIONS = ['passwordEnv'] as const;

/** What tls.connect takes, read from the files the URL names. */
export interface TlsSettings {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** SNI and the name checked; absent for an IP host without servername= (no SNI, the IP is checked). */
  servername?: string;
  rejectUnauthorized: boolean;
}

/**
 * The TLS settings the URL asks for, each problem added to `o`: a TLS option on a plain scheme (saying
 * which scheme to use), a file that is missing, cert= without key=. Undefined on a plain scheme or when
 * something is wrong; the files are read only when everything is fine.
 */
export function readTls(
  o: UrlOptions,
  opts: { secure: boolean; secureScheme: string; host: string },
): TlsSettings | undefined {
  if (!opts.secure) {
    for (const name of TLS_OPTIONS) {
      if (o.has(name)) o.problem(`${name}= is a TLS option: use ${opts.secureScheme}:// for TLS`);
    }
    return undefined;
  }
  const before = o.problems.length;
  const ca = o.file('ca');
  const cert = o.file('cert');
  const key = o.file('key');
  if (o.has('cert') !== o.has('key'))
    o.problem('cert= and key= go together: a client certificate needs its private key');
  const servername = o.matching('servername', /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/, 'a DNS name');
  const insecure = o.boolean('insecure', false);
  if (o.problems.length > before) return undefined;
  const read = (option: string, path: string | undefined): Buffer | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      o.problem(`${option}=${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      return undefined;
    }
  };
  const files = { ca: read('ca', ca), cert: read('cert', cert), key: read('key', key) };
  if (o.problems.length > before) return undefined;
  const name = servername ?? opts.host;
  return {
    ...(files.ca ? { ca: files.ca } : {}),
    ...(files.cert ? { cert: files.cert } : {}),
    ...(files.key ? { key: files.key } : {}),
    // RFC 6066 forbids an IP address as SNI (Node warns); the certificate is then checked against the IP.
    ...(isIP(name) ? {} : { servername: name }),
    rejectUnauthorized: !insecure,
  };
}

/**
 * The password: the URL's (percent-decoded), or that of environment variable `passwordEnv=NAME`; a
 * problem when both are given or the variable is not set.
 */
export function readPassword(o: UrlOptions, u: URL): string | undefined {
  if (!o.has('passwordEnv')) return u.password ? decodeURIComponent(u.password) : undefined;
  if (u.password) {
    o.problem('give the password in the URL or with passwordEnv=, not both');
    return undefined;
  }
  return o.env('passwordEnv');
}

/**
 * The warning to log when a transport URL turns certificate checks off (insecure=1), else undefined.
 * Read from the URL's query alone, so the registry says it once for every kind: it is asked only of a
 * URL its kind accepted, and every kind refuses insecure= except on a TLS connection (readTls, tls=1).
 */
export function insecureWarning(url: string, displayUrl: string): string | undefined {
  const query = /\?([^#]*)/.exec(url.split('#')[0]!)?.[1];
  if (query === undefined) return undefined;
  // Other options are the kind's to judge; only insecure= is read here, as readTls reads it.
  return new UrlOptions(query, TLS_OPTIONS, 'tls').boolean('insecure', false)
    ? `${displayUrl}: insecure=1: the server certificate is not verified, so anyone on the path can read and change the traffic`
    : undefined;
}
