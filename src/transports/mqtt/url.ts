/**
 * `mqtt[s]://[user:pass@]host:port?options`, read without mqtt.js so `config check` and a connect agree.
 * Options and defaults: index.ts and the README's "Transport URLs".
 */
import { randomBytes } from 'node:crypto';
import { UrlOptions, valueOrThrow, type UrlReading } from '../url-options.js';
import { CREDENTIAL_OPTIONS, TLS_OPTIONS, readPassword, readTls, type TlsSettings } from '../tls-options.js';

export type QoS = 0 | 1 | 2;

export interface MqttConfig {
  /** The broker URL for mqtt.js, without credentials or options. */
  url: string;
  qos: QoS;
  clean: boolean;
  clientId: string;
  version: 4 | 5;
  keepalive: number;
  sessionExpiry: number;
  connectTimeoutMs: number;
  username: string | undefined;
  password: string | undefined;
  /** mqtts:// only: what tls.connect gets. */
  tls: TlsSettings | undefined;
}

const OPTIONS = [
  'qos',
  'clean',
  'clientId',
  'version',
  'keepalive',
  'sessionExpiry',
  'connectTimeoutMs',
  ...TLS_OPTIONS,
  ...CREDENTIAL_OPTIONS,
] as const;

/**
 * `clientName` null: not known (config check), so clean=false without clientId= is not judged; whether
 * it has a stable client id depends on the name the process runs under.
 */
function readMqttUrl(url: string, clientName: string | undefined | null): UrlReading<MqttConfig> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { value: undefined, problems: ['not a URL (expected mqtt[s]://[user:pass@]host:port?options)'] };
  }
  if (u.protocol !== 'mqtt:' && u.protocol !== 'mqtts:')
    return { value: undefined, problems: ['the scheme must be mqtt:// or mqtts://'] };
  const secure = u.protocol === 'mqtts:';
  const o = new UrlOptions(u.searchParams, OPTIONS, secure ? 'mqtts' : 'mqtt');
  const clean = o.boolean('clean', true);
  const version = Number(o.oneOf('version', ['5', '4'], '5')) as 4 | 5;
  const name = clientName ?? undefined;
  let clientId = o.string('clientId');
  if (clientId === undefined) {
    if (!clean && clientName === undefined)
      o.problem(
        'clean=false needs a stable clientId= (or a client name), or the broker cannot find the session',
      );
    clientId = clean
      ? `coalmine-${name ? `${name}-` : ''}${randomBytes(4).toString('hex')}`
      : `coalmine-${name ?? 'unnamed'}`;
  }
  const hostname = u.hostname.replace(/^\[|\]$/g, '');
  const value: MqttConfig = {
    url: `${u.protocol}//${u.host}`,
    qos: Number(o.oneOf('qos', ['0', '1', '2'], '1')) as QoS,
    clean,
    clientId,
    version,
    keepalive: o.integer('keepalive', 10, 0, 65535, 'seconds; 0 turns keepalive off'),
    sessionExpiry: o.integer('sessionExpiry', 3600, 0, 0xffffffff, 'seconds'),
    connectTimeoutMs: o.integer('connectTimeoutMs', 5000, 1, undefined, 'milliseconds'),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: readPassword(o, u),
    tls: readTls(o, { secure, secureScheme: 'mqtts', host: hostname }),
  };
  return { value, problems: o.problems };
}

/**
 * Every problem with the URL's options, as sentences naming the option and what it allows. Not judged
 * here: clean=false without clientId=, which is fine when the process runs under a client name.
 */
export function checkUrl(url: string): string[] {
  return readMqttUrl(url, null).problems;
}

/** The config the URL gives; throws ConfigError listing every problem, the password hidden. */
export function parseMqttUrl(url: string, clientName?: string): MqttConfig {
  return valueOrThrow(url, readMqttUrl(url, clientName));
}
