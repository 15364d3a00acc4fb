/**
 * What to tell a person whose TLS connection failed, by the OpenSSL or Node code in the error: an
 * untrusted certificate wants ca=, a wrong name wants servername=, a plain server on a TLS port (or
 * the reverse) wants the other scheme. Without this they all read "is the server running?".
 */

/** Whether the URL asked for TLS, and the scheme to suggest instead (`redis` for `rediss`, and back). */
export interface TlsContext {
  secure: boolean;
  otherScheme: string;
  /**
   * How to switch TLS off (when secure) or on, for URLs that say it with an option rather than a scheme
   * (Kafka: `leave out tls=1`, `add tls=1`); default `use <otherScheme>://`.
   */
  switchTls?: string;
  /**
   * Whether the client says, in its own words, that the server closed the connection before answering
   * (amqplib: "Socket closed abruptly during opening handshake"; Kafka's client: a network error
   * "Connection closed" with no socket error), most often what a TLS port does with a plain client;
   * counted like a reset on a plain connection.
   */
  closedAtOnce?: (err: unknown) => boolean;
}

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
]);
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'EPROTO']);
const CLIENT_CERT = new Set([
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
]);

/** Every string `code` in err, its causes and its aggregated errors, outermost first. */
function codes(err: unknown, out: string[] = [], depth = 0): string[] {
  if (depth > 5 || typeof err !== 'object' || err === null) return out;
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown; message?: unknown };
  if (typeof e.code === 'string') out.push(e.code);
  // Some clients keep only the text of the socket error; the codes above are what it then starts with.
  if (typeof e.message === 'string') {
    const quoted = /\b([A-Z][A-Z0-9_]{6,})\b/.exec(e.message)?.[1];
    if (quoted) out.push(quoted);
  }
  for (const n of [e.cause, ...(Array.isArray(e.errors) ? (e.errors as unknown[]) : [])])
    codes(n, out, depth + 1);
  return out;
}

/** The hint for a TLS failure, or undefined when err is not one (then the usual hint applies). */
export function tlsHint(err: unknown, tls: TlsContext): string | undefined {
  const found = codes(err);
  const has = (set: Set<string>) => found.some((c) => set.has(c));
  const other = `${tls.otherScheme}://`;
  const use = tls.switchTls ?? `use ${other}`;
  if (tls.secure) {
    if (has(UNTRUSTED))
      return "the server's certificate is not signed by a CA this client trusts: give the CA's certificate with ca=/path/ca.pem (insecure=1 skips the check, never in production)";
    if (found.includes('ERR_TLS_CERT_ALTNAME_INVALID'))
      return "the server's certificate does not carry this host name: connect by a name it carries, or name one with servername=";
    if (found.includes('CERT_HAS_EXPIRED')) return "the server's certificate has expired: renew it";
    if (found.includes('CERT_NOT_YET_VALID'))
      return "the server's certificate is not valid yet: check the clocks of both machines";
    if (has(CLIENT_CERT))
      return 'the server refused the TLS handshake, most likely our client certificate: give one it trusts with cert= and key=';
    if (has(NOT_TLS)) return `the server does not speak TLS on that port: ${use}, or the server's TLS port`;
    if (found.includes('ECONNRESET') || found.includes('EPIPE'))
      return `the server closed the connection during the TLS handshake: if that port speaks plain ${tls.otherScheme}, not TLS, ${use}; if it wants a client certificate, give cert= and key=`;
    if (found.includes('ETIMEDOUT'))
      return `no answer in time: if that port does not speak TLS, ${use}; otherwise check the address and any firewall`;
  } else if (found.includes('ECONNRESET') || found.includes('EPIPE') || tls.closedAtOnce?.(err)) {
    return `the server closed the connection at once: if that port takes TLS only, ${use}`;
  }
  return undefined;
}
