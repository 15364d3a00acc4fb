import { TransportError } from '../transport.js';

export interface NatsUrl {
  jetstream: boolean;
  /** host:port entries for the nats.js `servers` option. */
  servers: string[];
  user: string | undefined;
  pass: string | undefined;
  token: string | undefined;
  /** Core only: await a PING/PONG round trip after each publish and report it as ackNs. */
  flush: boolean;
  /** JetStream only. */
  stream: string;
  maxMsgs: number;
}

/**
 * Parses `nats://[user:pass@|token@]host:port[,host:port...][?flush=true]` and
 * `nats+jetstream://...[?stream=COALMINE&maxMsgs=100000]`. Parsed by hand for the comma-separated list.
 */
export function parseNatsUrl(url: string): NatsUrl {
  const m = /^(nats|nats\+jetstream):\/\/(?:([^@/?#]*)@)?([^/?#]+)\/?(?:\?([^#]*))?$/i.exec(url);
  if (!m)
    throw new TransportError(
      'error',
      `not a NATS URL: ${url} (expected nats[+jetstream]://host:port[?options])`,
    );
  const jetstream = m[1]!.toLowerCase() === 'nats+jetstream';
  const servers = m[3]!.split(',').map((s) => (/:\d+$/.test(s.trim()) ? s.trim() : `${s.trim()}:4222`));
  let user: string | undefined;
  let pass: string | undefined;
  let token: string | undefined;
  if (m[2]) {
    const [u, p] = m[2].split(':', 2) as [string, string | undefined];
    if (p === undefined) token = decodeURIComponent(u);
    else [user, pass] = [decodeURIComponent(u), decodeURIComponent(p)];
  }
  const q = new URLSearchParams(m[4] ?? '');
  const known = jetstream ? ['stream', 'maxMsgs'] : ['flush'];
  for (const key of q.keys()) {
    if (!known.includes(key))
      throw new TransportError(
        'error',
        `unknown option "${key}" for ${m[1]}:// (known: ${known.join(', ')})`,
      );
  }
  const flush = (q.get('flush') ?? 'false').toLowerCase();
  if (flush !== 'true' && flush !== 'false')
    throw new TransportError('error', `flush must be true or false, not "${flush}"`);
  const stream = q.get('stream') ?? 'COALMINE';
  if (!/^[A-Za-z0-9_-]+$/.test(stream))
    throw new TransportError('error', `stream name "${stream}" must match [A-Za-z0-9_-]+`);
  const maxMsgs = Number(q.get('maxMsgs') ?? 100_000);
  if (!Number.isInteger(maxMsgs) || maxMsgs < 1)
    throw new TransportError('error', `maxMsgs must be a positive integer`);
  return { jetstream, servers, user, pass, token, flush: flush === 'true', stream, maxMsgs };
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
