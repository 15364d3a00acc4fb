/**
 * `amqp[s]://user:pass@host:port/vhost?options`, read without amqplib so `config check` and a connect
 * agree. Options and defaults: index.ts and the README's "Transport URLs".
 */
import { UrlOptions, valueOrThrow, type UrlReading } from '../url-options.js';
import { CREDENTIAL_OPTIONS, TLS_OPTIONS, readPassword, readTls, type TlsSettings } from '../tls-options.js';

export interface AmqpConfig {
  connect: {
    protocol: 'amqp' | 'amqps';
    hostname: string;
    port: number;
    username?: string;
    password?: string;
    vhost: string;
    heartbeat: number;
  };
  /** amqps:// only: what tls.connect gets. */
  tls: TlsSettings | undefined;
  exchange: string;
  confirm: boolean;
  durable: boolean;
  prefetch: number;
  queuePrefix: string | undefined;
  connectTimeoutMs: number;
}

const OPTIONS = [
  'exchange',
  'confirm',
  'durable',
  'prefetch',
  'queue',
  'heartbeat',
  'connectTimeoutMs',
  ...TLS_OPTIONS,
  ...CREDENTIAL_OPTIONS,
] as const;

function readAmqpUrl(url: string): UrlReading<AmqpConfig> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return {
      value: undefined,
      problems: ['not a URL (expected amqp[s]://user:pass@host:port/vhost?options)'],
    };
  }
  if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:')
    return { value: undefined, problems: ['the scheme must be amqp:// or amqps://'] };
  const secure = u.protocol === 'amqps:';
  const o = new UrlOptions(u.searchParams, OPTIONS, secure ? 'amqps' : 'amqp');
  const hostname = u.hostname.replace(/^\[|\]$/g, '');
  const path = u.pathname.replace(/^\//, '');
  const username = u.username ? decodeURIComponent(u.username) : undefined;
  const password = readPassword(o, u);
  if (password !== undefined && username === undefined)
    o.problem('a password needs a user name: amqps://USER@host/?passwordEnv=NAME');
  const value: AmqpConfig = {
    connect: {
      protocol: secure ? 'amqps' : 'amqp',
      hostname,
      port: u.port ? Number(u.port) : secure ? 5671 : 5672,
      // amqplib defaults both to guest only when neither is given.
      ...(username !== undefined || password !== undefined
        ? { username: username ?? '', password: password ?? '' }
        : {}),
      vhost: path === '' ? '/' : decodeURIComponent(path),
      heartbeat: o.integer('heartbeat', 10, 0, 65535, 'seconds; 0 turns heartbeats off'),
    },
    tls: readTls(o, { secure, secureScheme: 'amqps', host: hostname }),
    exchange:
      o.matching('exchange', /^[A-Za-z0-9_.:-]{1,255}$/, '1 to 255 of A-Z a-z 0-9 _ . : -') ?? 'coalmine',
    confirm: o.boolean('confirm', true),
    durable: o.boolean('durable', false),
    prefetch: o.integer('prefetch', 1000, 0, 65535, 'unacknowledged deliveries; 0 means no limit'),
    queuePrefix: o.string('queue'),
    connectTimeoutMs: o.integer('connectTimeoutMs', 5000, 1, undefined, 'milliseconds'),
  };
  return { value, problems: o.problems };
}

/** Every problem with the URL's options, as sentences naming the option and what it allows. */
export function checkUrl(url: string): string[] {
  return readAmqpUrl(url).problems;
}

/** The config the URL gives; throws ConfigError listing every problem, the password hidden. */
export function parseAmqpUrl(url: string): AmqpConfig {
  return valueOrThrow(url, readAmqpUrl(url));
}
