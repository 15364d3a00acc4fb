import { hostname } from 'node:os';
import type { RedisOptions } from 'ioredis';
import { ConfigError } from '../../core/errors.js';
import { redactUrl } from '../base.js';

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

/** Parses `redis[s][+stream]://[user:pass@]host[:port][/db][?options]`; throws ConfigError naming the problem. */
export function parseRedisUrl(url: string): RedisUrlConfig {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError([`invalid Redis URL ${JSON.stringify(redactUrl(url))}`]);
  }
  const scheme = u.protocol.slice(0, -1).toLowerCase();
  const schemes = ['redis', 'rediss', 'redis+stream', 'rediss+stream'];
  if (!schemes.includes(scheme)) {
    throw new ConfigError([
      `${redactUrl(url)}: scheme must be one of ${schemes.map((s) => `${s}://`).join(', ')}`,
    ]);
  }
  const mode = scheme.endsWith('+stream') ? 'stream' : 'pubsub';
  const problem = (what: string) => new ConfigError([`${redactUrl(url)}: ${what}`]);

  const known: readonly string[] = mode === 'stream' ? STREAM_OPTIONS : [];
  for (const key of u.searchParams.keys()) {
    if (!known.includes(key)) {
      throw problem(
        known.length
          ? `unknown option ?${key}= (known: ${known.join(', ')})`
          : `unknown option ?${key}= (redis:// pub/sub takes no options; streams are redis+stream://)`,
      );
    }
  }

  const dbText = u.pathname.replace(/^\/+/, '');
  if (dbText !== '' && !/^\d+$/.test(dbText)) throw problem(`database must be a number, got /${dbText}`);
  const port = u.port === '' ? 6379 : Number(u.port);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  const connection: RedisOptions = { host, port, db: dbText === '' ? 0 : Number(dbText) };
  if (u.username) connection.username = decodeURIComponent(u.username);
  if (u.password) connection.password = decodeURIComponent(u.password);
  // Certificates are checked against the host name as usual; TLS settings beyond that are not in the URL.
  if (scheme.startsWith('rediss')) connection.tls = { servername: host };

  const maxlenText = u.searchParams.get('maxlen');
  const maxlen = maxlenText === null ? 10_000 : Number(maxlenText);
  if (!Number.isInteger(maxlen) || maxlen < 1)
    throw problem(`maxlen must be a positive integer, got ${maxlenText}`);
  const group = u.searchParams.get('group') ?? undefined;
  if (group === '') throw problem('group must not be empty');
  const consumer = u.searchParams.get('consumer') || hostname();

  return { mode, connection, maxlen, group, consumer };
}
