import { readFileSync } from 'node:fs';
import { TLS_OPTIONS as TLS_FILE_OPTIONS, readTls, type TlsSettings } from '../tls-options.js';
import { UrlOptions, valueOrThrow, type UrlReading } from '../url-options.js';

export interface NatsUrl {
  jetstream: boolean;
  /** host:port entries for the nats.js `servers` option. */
  servers: string[];
  user: string | undefined;
  pass: string | undefined;
  token: string | undefined;
  /** The contents of a `.creds` file (user JWT and nkey seed), from `creds=`. */
  creds: Uint8Array | undefined;
  /** Present when the URL asks for TLS (`tls=1`): the server must offer it. */
  tls: TlsSettings | undefined;
  /** Core only: await a PING/PONG round trip after each publish and report it as ackNs. */
  flush: boolean;
  /** JetStream only. */
  stream: string;
  maxMsgs: number;
}

const CORE_OPTIONS = ['flush'];
const JETSTREAM_OPTIONS = ['stream', 'maxMsgs'];
const TLS_OPTIONS = ['tls', ...TLS_FILE_OPTIONS];
const AUTH_OPTIONS = ['creds', 'tokenEnv', 'passwordEnv'];

const SHAPE = 'nats[+jetstream]://[user:pass@|token@]host:port[,host:port...][?options]';

/**
 * Reads `nats://[user:pass@|token@]host:port[,host:port...][?options]` and `nats+jetstream://...`, with
 * every problem. Parsed by hand for the comma-separated server list.
 */
export function readNatsUrl(url: string): UrlReading<NatsUrl> {
  const m = /^(nats|nats\+jetstream):\/\/(?:([^@/?#]*)@)?([^/?#]+)\/?(?:\?([^#]*))?$/i.exec(url);
  if (!m) return { value: undefined, problems: [`not a NATS URL (expected ${SHAPE})`] };
  const scheme = m[1]!.toLowerCase();
  const jetstream = scheme === 'nats+jetstream';
  const o = new UrlOptions(
    m[4] ?? '',
    [...(jetstream ? JETSTREAM_OPTIONS : CORE_OPTIONS), ...TLS_OPTIONS, ...AUTH_OPTIONS],
    scheme,
  );
  const servers: string[] = [];
  for (const raw of m[3]!.split(',')) {
    const s = raw.trim();
    if (!s) o.problem('a server address in the list is empty (write host:port,host:port)');
    else if (/:(\d+)$/.test(s) && !(Number(/:(\d+)$/.exec(s)![1]) <= 65535))
      o.problem(`port of ${s} must be from 1 to 65535`);
    else servers.push(/:\d+$/.test(s) ? s : `${s}:4222`);
  }

  let user: string | undefined;
  let pass: string | undefined;
  let token: string | undefined;
  const userinfo = m[2];
  if (userinfo) {
    const colon = userinfo.indexOf(':');
    if (colon >= 0)
      [user, pass] = [
        decodeURIComponent(userinfo.slice(0, colon)),
        decodeURIComponent(userinfo.slice(colon + 1)),
      ];
    // NAME@host is a token, unless the password comes from the environment.
    else if (o.has('passwordEnv')) user = decodeURIComponent(userinfo);
    else token = decodeURIComponent(userinfo);
  }
  if (o.has('passwordEnv')) {
    if (user === undefined)
      o.problem('passwordEnv= needs a user name in the URL (nats://USER@host?passwordEnv=NAME)');
    else if (pass) o.problem('give the password in the URL or with passwordEnv=, not both');
    else pass = o.env('passwordEnv');
  }
  if (o.has('tokenEnv')) {
    if (userinfo)
      o.problem('tokenEnv= takes the token from the environment: leave user and token out of the URL');
    else token = o.env('tokenEnv');
  }
  const credsPath = o.file('creds');
  const ways = [user !== undefined, token !== undefined || o.has('tokenEnv'), o.has('creds')];
  if (ways.filter(Boolean).length > 1)
    o.problem('give one way to log in: user and password, a token, or creds=, not several');
  let creds: Uint8Array | undefined;
  if (credsPath !== undefined) {
    const text = readFileSync(credsPath, 'utf8');
    if (!/-----BEGIN NATS USER JWT-----/.test(text) || !/-----BEGIN USER NKEY SEED-----/.test(text))
      o.problem(
        `creds=${credsPath} is not a NATS credentials file (it needs a user JWT and its nkey seed, as nsc writes)`,
      );
    else creds = new TextEncoder().encode(text);
  }

  const tlsOn = o.boolean('tls', false);
  if (!tlsOn)
    for (const k of TLS_FILE_OPTIONS)
      if (o.has(k)) o.problem(`${k}= is a TLS option: add tls=1 to connect with TLS`);
  const host = servers[0]?.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1') ?? '';
  const tls = tlsOn ? readTls(o, { secure: true, secureScheme: scheme, host }) : undefined;

  const flush = o.boolean('flush', false);
  const stream =
    o.matching('stream', /^[A-Za-z0-9_-]+$/, 'a stream name of letters, digits, "_" or "-"') ?? 'COALMINE';
  const maxMsgs = o.integer('maxMsgs', 100_000, 1, Number.MAX_SAFE_INTEGER, 'messages');
  return {
    value: { jetstream, servers, user, pass, token, creds, tls, flush, stream, maxMsgs },
    problems: o.problems,
  };
}

/** Parses a NATS URL; throws a ConfigError listing every problem. */
export function parseNatsUrl(url: string): NatsUrl {
  return valueOrThrow(url, readNatsUrl(url));
}

export function checkUrl(url: string): string[] {
  return readNatsUrl(url).problems;
}

/** NATS subjects are dot-separated tokens without spaces or wildcards; anything else becomes `_`. */
export function subjectFor(channel: string): string {
  return channel
    .replace(/[^A-Za-z0-9_.-]/g, '_')
    .split('.')
    .map((t) => t || '_')
    .join('.');
}

/** The stream subject that covers a channel's subject: its first token's wildcard, or itself. */
export function streamSubjectFor(subject: string): string {
  const tokens = subject.split('.');
  return tokens.length > 1 ? `${tokens[0]}.>` : subject;
}

/** Whether a subject filter (with `*` and `>` wildcards) matches a literal subject. */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (f[i] !== '*' && f[i] !== s[i]) return false;
  }
  return f.length === s.length;
}
