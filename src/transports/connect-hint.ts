/**
 * What to tell a person whose first connection failed, chosen by why it failed: a refused connection
 * means nothing listens there (start the server), an unknown host means the name is wrong, a rejected
 * login means the credentials are; one hint for all of them sent people to check the wrong thing.
 */
import { tlsHint, type TlsContext } from './tls-hint.js';

/** Per transport: its server, how to start it, and which credentials it takes. */
export interface ConnectHints {
  /** `Redis`, `RabbitMQ`, `nats-server`. */
  server: string;
  /** How to start one, shown after "start it": `redis-server`, `nats-server -js`. */
  start?: string;
  /** `user and password`, `password and database`. */
  credentials: string;
  /** Whether `err` is this server refusing the login (its own codes: WRONGPASS, 28P01, ACCESS_REFUSED). */
  isAuthFailure(err: unknown): boolean;
  /** Whether the URL asked for TLS, so a certificate or plain/TLS mismatch gets its own hint. */
  tls?: TlsContext;
}

const UNREACHABLE = new Set(['ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN']);
const UNKNOWN_HOST = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME']);

const CODE_IN_TEXT =
  /\b(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EAI_NONAME|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EHOSTDOWN)\b/;

/**
 * The system error code (ECONNREFUSED) somewhere in err, its causes or its aggregated errors; failing
 * those, one its message quotes (some clients keep only the text of the socket error).
 */
export function systemErrorCode(err: unknown, depth = 0): string | undefined {
  if (depth > 5 || typeof err !== 'object' || err === null) return undefined;
  const e = err as {
    code?: unknown;
    cause?: unknown;
    errors?: unknown;
    chainedError?: unknown;
    message?: unknown;
  };
  if (typeof e.code === 'string' && /^E[A-Z_]+$/.test(e.code)) return e.code;
  const quoted = typeof e.message === 'string' ? CODE_IN_TEXT.exec(e.message)?.[1] : undefined;
  if (quoted) return quoted;
  const nested = [e.cause, e.chainedError, ...(Array.isArray(e.errors) ? (e.errors as unknown[]) : [])];
  for (const n of nested) {
    const code = systemErrorCode(n, depth + 1);
    if (code) return code;
  }
  return undefined;
}

/** The hint that fits why `err` ended the first connection to `host:port`. */
export function connectHint(err: unknown, hints: ConnectHints): string {
  if (hints.isAuthFailure(err)) return `the server refused the login: check the ${hints.credentials}`;
  const tls = hints.tls && tlsHint(err, hints.tls);
  if (tls) return tls;
  const code = systemErrorCode(err);
  if (code === 'ECONNREFUSED')
    return `nothing is listening there: start ${hints.server}${hints.start ? ` (${hints.start})` : ''} or fix the host and port`;
  if (code && UNKNOWN_HOST.has(code)) return 'the host name does not resolve: check it';
  if (code && UNREACHABLE.has(code)) return 'the host does not answer: check the address and any firewall';
  return `is ${hints.server} running there, and are the ${hints.credentials} right?`;
}
