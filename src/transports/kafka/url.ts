import { TLS_OPTIONS, readTls, type TlsSettings } from '../tls-options.js';
import { UrlOptions, valueOrThrow, type UrlReading } from '../url-options.js';

export type KafkaAcks = -1 | 0 | 1;

/** The SASL mechanisms @platformatic/kafka implements without a custom authenticator. */
export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
export type KafkaSaslMechanism = (typeof SASL_MECHANISMS)[number];

export interface KafkaUrl {
  brokers: string[];
  acks: KafkaAcks;
  /** Explicit consumer group (base) name, when `?group=` is given. */
  group: string | undefined;
  fromBeginning: boolean;
  /** Present with `tls=1`: every broker connection is TLS. */
  tls: TlsSettings | undefined;
  /** Present with `sasl=`: the mechanism and the credentials (the password never appears in a log). */
  sasl: { mechanism: KafkaSaslMechanism; username: string; password: string } | undefined;
}

const OPTIONS = ['acks', 'group', 'fromBeginning', 'tls', ...TLS_OPTIONS, 'sasl', 'passwordEnv'];

const SHAPE = 'kafka://[user[:pass]@]host:port[,host:port...][?options]';

/**
 * Reads `kafka://[user[:pass]@]host:port[,host:port...][?options]` with every problem; options are
 * acks=all|1|0, group=NAME, fromBeginning=true|false, tls=1 with ca=, cert=, key=, servername=,
 * insecure=1, and sasl=plain|scram-sha-256|scram-sha-512 with the user and password (or passwordEnv=).
 * Parsed by hand because a comma-separated host list is not a host the URL parser accepts everywhere.
 */
export function readKafkaUrl(url: string): UrlReading<KafkaUrl> {
  const m = /^kafka:\/\/(?:([^@/?#]*)@)?([^@/?#]+)\/?(?:\?([^#]*))?$/i.exec(url);
  if (!m) return { value: undefined, problems: [`not a Kafka URL (expected ${SHAPE})`] };
  const o = new UrlOptions(m[3] ?? '', OPTIONS, 'kafka');
  const brokers: string[] = [];
  for (const b of m[2]!.split(',')) {
    const hp = b.trim();
    if (!hp) o.problem('a broker address in the list is empty (write host:port,host:port)');
    else brokers.push(/:\d+$/.test(hp) || hp.startsWith('[') ? hp : `${hp}:9092`);
  }
  const acksText = o.oneOf('acks', ['all', '-1', '1', '0'], 'all');
  const acks = ({ all: -1, '-1': -1, '1': 1, '0': 0 } as const)[acksText];
  const fromBeginning = o.boolean('fromBeginning', false);
  const group = o.string('group');

  const tlsOn = o.boolean('tls', false);
  if (!tlsOn)
    for (const k of TLS_OPTIONS)
      if (o.has(k)) o.problem(`${k}= is a TLS option: add tls=1 to connect with TLS`);
  const host = brokers[0]?.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1') ?? '';
  const tls = tlsOn ? readTls(o, { secure: true, secureScheme: 'kafka', host }) : undefined;

  const sasl = readSasl(o, m[1]);
  return { value: { brokers, acks, group, fromBeginning, tls, sasl }, problems: o.problems };
}

function readSasl(o: UrlOptions, userinfo: string | undefined): KafkaUrl['sasl'] {
  const colon = userinfo?.indexOf(':') ?? -1;
  const username =
    userinfo === undefined ? undefined : decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon));
  const urlPassword = colon < 0 ? undefined : decodeURIComponent(userinfo!.slice(colon + 1));
  if (!o.has('sasl')) {
    if (userinfo !== undefined || o.has('passwordEnv'))
      o.problem(
        `a user or password needs sasl= to say how to log in: one of ${SASL_MECHANISMS.map((s) => s.toLowerCase()).join(', ')}`,
      );
    return undefined;
  }
  const mechanism = o.oneOf('sasl', SASL_MECHANISMS, 'PLAIN');
  if (!username) {
    o.problem(
      `sasl= needs the user in the URL (kafka://USER:PASSWORD@host:port, or kafka://USER@host:port?passwordEnv=NAME)`,
    );
    return undefined;
  }
  let password: string | undefined;
  if (o.has('passwordEnv')) {
    if (urlPassword) o.problem('give the password in the URL or with passwordEnv=, not both');
    else password = o.env('passwordEnv');
  } else if (urlPassword) password = urlPassword;
  else
    o.problem(
      'sasl= needs a password: kafka://USER:PASSWORD@host:port, or passwordEnv=NAME to read it from the environment',
    );
  return password === undefined ? undefined : { mechanism, username, password };
}

/** Parses a Kafka URL; throws a ConfigError listing every problem. */
export function parseKafkaUrl(url: string): KafkaUrl {
  return valueOrThrow(url, readKafkaUrl(url));
}

export function checkUrl(url: string): string[] {
  return readKafkaUrl(url).problems;
}

/** Kafka topic names allow [a-zA-Z0-9._-] up to 249 chars; anything else becomes `_`. */
export function topicFor(channel: string): string {
  const t = channel.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 249);
  return t === '' || t === '.' || t === '..' ? `_${t}` : t;
}
