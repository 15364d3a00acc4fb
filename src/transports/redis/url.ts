import { hostname } from 'node:os';
import type { RedisOptions } from 'ioredis';
import { UrlOptions, valueOrThrow, type UrlReading } from '../url-options.js';
import { CREDENTIAL_OPTIONS, TLS_OPTIONS, readPassword, readTls } from '../tls-options.js';

export interface RedisUrlConfig {
  mode: 'pubsub' | 'stream';
  /** Connection options for ioredis (host, port, db, credentials, TLS). */
  connection: RedisOptions;
  /** Streams: approximate MAXLEN bound for XADD. */
  maxlen: number;
  /** Streams: consumer group, when the URL names one. */
  group?: string;
  /** Streams: consumer name inside the group. */
  consumer: string;
}

const STREAM_OPTIONS = ['maxlen', 'group', 'consumer'] as const;
const SCHEMES = ['redis', 'rediss', 'redis+stream', 'rediss+stream'];

/** Reads `redis[s][+stream]://[user:pass@]host[:port][/db][?options]` with every problem. */
function readRedisUrl(url: string): UrlReading<RedisUrlConfig> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return {
      value: undefined,
      problems: ['not a URL (expected redis[s][+stream]://[user:pass@]host[:port][/db])'],
    };
  }
  const scheme = u.protocol.slice(0, -1).toLowerCase();
  if (!SCHEMES.includes(scheme))
    return {
      value: undefined,
      problems: [`the scheme must be one of ${SCHEMES.map((s) => `${s}://`).join(', ')}`],
    };
  const mode = scheme.endsWith('+stream') ? 'stream' : 'pubsub';
  const secure = scheme.startsWith('rediss');
  // Stream options are known on every scheme, so on pub/sub the problem can say where they belong.
  const o = new UrlOptions(
    u.searchParams,
    [...STREAM_OPTIONS, ...TLS_OPTIONS, ...CREDENTIAL_OPTIONS],
    scheme,
  );
  if (mode === 'pubsub') {
    for (const name of STREAM_OPTIONS) {
      if (o.has(name))
        o.problem(`${name}= is a stream option: use ${secure ? 'rediss' : 'redis'}+stream:// for streams`);
    }
  }

  const dbText = u.pathname.replace(/^\/+/, '');
  if (dbText !== '' && !/^\d+$/.test(dbText)) o.problem(`the database must be a number, got /${dbText}`);
  const port = u.port === '' ? 6379 : Number(u.port);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  const connection: RedisOptions = {
    host,
    port,
    db: dbText === '' || !/^\d+$/.test(dbText) ? 0 : Number(dbText),
  };
  if (u.username) connection.username = decodeURIComponent(u.username);
  const password = readPassword(o, u);
  if (password !== undefined) connection.password = password;
  const tls = readTls(o, { secure, secureScheme: mode === 'stream' ? 'rediss+stream' : 'rediss', host });
  if (tls) connection.tls = tls;

  const maxlen = o.integer('maxlen', 10_000, 1, undefined, 'entries kept per stream, approximately');
  const group = o.string('group');
  const consumer = o.string('consumer') ?? hostname();
  return { value: { mode, connection, maxlen, group, consumer }, problems: o.problems };
}

/** Every problem with the URL's options, as sentences naming the option and what it allows. */
export function checkUrl(url: string): string[] {
  return readRedisUrl(url).problems;
}

/** Parses `redis[s][+stream]://[user:pass@]host[:port][/db][?options]`; throws ConfigError listing every problem. */
export function parseRedisUrl(url: string): RedisUrlConfig {
  return valueOrThrow(url, readRedisUrl(url));
}
