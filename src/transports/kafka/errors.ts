import { TransportError, type TransportErrorCode } from '../transport.js';

interface ErrorLike {
  message?: string;
  code?: string;
  apiId?: string;
  cause?: unknown;
  errors?: unknown[];
}

/** Every error in a @platformatic/kafka error tree (MultipleErrors nest, ProtocolErrors carry apiId). */
function flatten(err: unknown, out: ErrorLike[] = [], depth = 0): ErrorLike[] {
  if (!err || typeof err !== 'object' || depth > 8) return out;
  const e = err as ErrorLike;
  out.push(e);
  if (Array.isArray(e.errors)) for (const c of e.errors) flatten(c, out, depth + 1);
  if (e.cause) flatten(e.cause, out, depth + 1);
  return out;
}

const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);

export function kafkaErrorCode(err: unknown): TransportErrorCode {
  const all = flatten(err);
  if (all.some((e) => e.apiId && TOO_LARGE.has(e.apiId))) return 'too_large';
  if (all.some((e) => e.code === 'PLT_KFK_TIMEOUT' || e.code === 'ETIMEDOUT')) return 'timeout';
  if (all.some((e) => e.code === 'PLT_KFK_NETWORK' || /^E(CONN|HOST|NET|PIPE|ADDR)/.test(e.code ?? '')))
    return 'not_connected';
  if (all.some((e) => e.apiId)) return 'rejected';
  return 'error';
}

/** The most specific reason in an error tree: a system code (ECONNREFUSED) or a Kafka error id. */
export function kafkaReason(err: unknown): string {
  const all = flatten(err);
  const sys = all.find((e) => e.code && /^E[A-Z]+$/.test(e.code));
  if (sys) return sys.code!;
  const api = all.find((e) => e.apiId);
  if (api) return `${api.apiId}${api.message ? ` (${api.message})` : ''}`;
  const leaf = all[all.length - 1];
  return leaf?.message ?? String(err);
}

export function toTransportError(err: unknown, what: string): TransportError {
  if (err instanceof TransportError) return err;
  return new TransportError(kafkaErrorCode(err), `${what}: ${kafkaReason(err)}`, { cause: err });
}
