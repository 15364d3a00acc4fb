import type { ProbeError, ProbeErrorCode } from '../core/types.js';

const BY_SYSCALL_CODE: Record<string, ProbeErrorCode> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ETIMEDOUT: 'timeout',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EADDRNOTAVAIL: 'unreachable',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  EAI_FAIL: 'dns',
  EAI_NONAME: 'dns',
  ENODATA: 'dns',
  EACCES: 'permission',
  EPERM: 'permission',
  ABORT_ERR: 'aborted',
};

const TLS_CODES =
  /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_|ERR_OSSL_|EPROTO$)/;

/** Whether a Node error code comes from the TLS layer: a certificate, a name or a handshake. */
export function isTlsErrorCode(code: string): boolean {
  return TLS_CODES.test(code);
}

/**
 * Turns whatever a socket, resolver or TLS layer threw into a typed ProbeError.
 * `aborted` says the run's own signal fired, which is a timeout from the user's point of view.
 */
export function toProbeError(err: unknown, opts: { aborted?: boolean; timeoutMs?: number } = {}): ProbeError {
  if (opts.aborted) {
    return {
      code: 'timeout',
      message: opts.timeoutMs !== undefined ? `timed out after ${opts.timeoutMs} ms` : 'timed out',
    };
  }
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const sysCode = typeof e?.code === 'string' ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  let code: ProbeErrorCode = 'error';
  if (sysCode !== undefined) {
    code = BY_SYSCALL_CODE[sysCode] ?? (isTlsErrorCode(sysCode) ? 'tls' : 'error');
  }
  if (code === 'error' && /certificate|ssl|tls/i.test(message)) code = 'tls';
  return sysCode !== undefined ? { code, message, cause: sysCode } : { code, message };
}
