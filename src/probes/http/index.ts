import type { TLSSocket } from 'node:tls';
import { clipText } from '../../core/log.js';
import type { Phase, Phases, ProbeContext, ProbeError, ProbeResult, ProbeValues } from '../../core/types.js';
import { toProbeError } from '../net-errors.js';
import { defineProbe } from '../probe.js';
import { resolveHost } from '../resolve.js';
import { checkBody, checkHeaders, checkStatusAndVersion, needsBody } from './checks.js';
import {
  connectTcp,
  loadTlsMaterial,
  OwnedResources,
  startTls,
  summarizePeerChain,
  TlsFileError,
  type TlsMaterial,
} from './connection.js';
import {
  BodyTooLargeError,
  readBody,
  requestH1,
  requestH2,
  type OutgoingRequest,
  type ResponseHead,
} from './exchange.js';
import { httpOptions, normalizeVersion, type HttpOptions } from './options.js';
import { IP_PROTOCOL, TLS_CHAIN } from '../shared-values.js';

const TARGET_FORM = 'http://host[:port][/path] or https://host[:port][/path]';

export function validateHttpTarget(target: string): string | undefined {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return `"${target}" is not a URL; expected ${TARGET_FORM}`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `scheme must be http or https, got "${url.protocol.slice(0, -1)}"; expected ${TARGET_FORM}`;
  }
  if (url.hostname === '') return `no host in "${target}"; expected ${TARGET_FORM}`;
  // Targets become metric labels and log lines, so credentials in them would leak.
  if (url.username !== '' || url.password !== '') {
    return 'credentials in the URL are not supported (targets are metric labels); set headers.Authorization';
  }
  return undefined;
}

/** A check on the response failed; carries the result's error. */
class CheckFailed extends Error {
  constructor(readonly error: ProbeError) {
    super(error.message);
    this.name = 'CheckFailed';
  }
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
// Dropped when a redirect leaves the original host, as Go's client (and so blackbox) does.
const CREDENTIAL_HEADERS = ['authorization', 'www-authenticate', 'cookie', 'cookie2', 'proxy-authorization'];

const TLS_DETAIL_KEYS = [
  'tlsVersion',
  'tlsCipher',
  'alpn',
  'tlsAuthorizationError',
  'certSubject',
  'certIssuer',
  'certNotAfter',
  'certFingerprint256',
];

class HttpRun {
  readonly phases: Phases = {};
  readonly values: ProbeValues = {};
  readonly detail: Record<string, unknown> = {};
  readonly owned = new OwnedResources();
  readonly started: bigint;

  constructor(
    readonly opts: HttpOptions,
    readonly ctx: ProbeContext,
  ) {
    this.started = ctx.clock.nowNs();
  }

  now(): bigint {
    return this.ctx.clock.nowNs();
  }

  /** Phases add up across redirect hops, as blackbox_exporter adds them. */
  add(phase: Phase, ns: bigint): void {
    this.phases[phase] = (this.phases[phase] ?? 0n) + ns;
  }

  result(error?: ProbeError): ProbeResult {
    // Once the exchange completed (transfer timed, even when a check then failed), the run lasts as
    // long as its phases: the target's latency, not ours. Our own time between phases (promise hops,
    // building the request, the event loop noticing 'connect') is not the target's, and on an idle
    // machine it is larger than a loopback exchange. blackbox_exporter bills its own overhead; we do
    // not. A run that did not get that far keeps its wall time, which is what a timeout means.
    const p = this.phases;
    const durationNs =
      p.transfer !== undefined
        ? (p.resolve ?? 0n) + (p.connect ?? 0n) + (p.tls ?? 0n) + (p.processing ?? 0n) + p.transfer
        : this.now() - this.started;
    const base = {
      durationNs,
      phases: this.phases,
      values: this.values,
      detail: this.detail,
    };
    return error ? { ok: false, ...base, error } : { ok: true, ...base };
  }

  async execute(target: string): Promise<ProbeResult> {
    const problem = validateHttpTarget(target);
    if (problem !== undefined) return this.result({ code: 'error', message: problem });
    try {
      const material = await loadTlsMaterial(this.opts.tls);
      const final = await this.followChain(target, material);
      return this.result(await this.judge(final));
    } catch (err) {
      return this.result(this.classify(err));
    } finally {
      this.owned.destroyAll();
    }
  }

  classify(err: unknown): ProbeError {
    if (this.ctx.signal.aborted) return toProbeError(err, { aborted: true, timeoutMs: this.ctx.timeoutMs });
    if (err instanceof CheckFailed) return err.error;
    if (err instanceof BodyTooLargeError) return { code: 'validation', message: err.message };
    if (err instanceof TlsFileError) {
      return err.code
        ? { code: 'error', message: err.message, cause: err.code }
        : { code: 'error', message: err.message };
    }
    const error = toProbeError(err);
    // llhttp parse errors (HPE_*), HTTP/2 framing errors and undecodable compressed bodies are a server
    // speaking something other than the HTTP we asked for.
    if (error.code === 'error' && /^(HPE_|ERR_HTTP2_|ERR_INVALID_HTTP|Z_)/.test(error.cause ?? '')) {
      return { ...error, code: 'protocol' };
    }
    return error;
  }

  /** Requests the target and follows redirects; returns the final response head, its body unread. */
  async followChain(target: string, material: TlsMaterial): Promise<{ head: ResponseHead; note: string }> {
    const { opts } = this;
    const originalHost = new URL(target).hostname;
    const headers: Record<string, string> = { 'user-agent': 'coalmine' };
    for (const [name, value] of Object.entries(opts.headers)) headers[name.toLowerCase()] = value;
    // A Host set by the user is kept only while redirects stay relative, as Go's client does.
    let hostOverride = headers.host;
    let req: OutgoingRequest = { url: new URL(target), method: opts.method, headers, body: opts.body };
    let redirects = 0;
    this.values.http_redirects = 0;
    for (;;) {
      const head = await this.hop(req, hostOverride, material);
      const location = head.headers.location;
      const isRedirect = opts.followRedirects && REDIRECT_STATUSES.has(head.status) && location !== undefined;
      if (!isRedirect) return { head, note: '' };
      if (redirects >= opts.maxRedirects) return { head, note: ` (stopped after ${redirects} redirects)` };
      let next: URL;
      try {
        next = new URL(location, req.url);
      } catch {
        throw new CheckFailed({
          code: 'protocol',
          message: `redirect to an invalid Location "${clipText(location, 200)}"`,
        });
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new CheckFailed({
          code: 'protocol',
          // A header can hold 16 KiB: the message (stored, served, logged) keeps the start of it.
          message: `redirect to unsupported scheme in "${clipText(location, 200)}"`,
        });
      }
      // The intermediate body is not read: its connection is closed, as a fresh one serves the next hop.
      this.owned.destroyAll();
      redirects += 1;
      this.values.http_redirects = redirects;
      if (/^[a-z][a-z0-9+.-]*:|^\/\//i.test(location)) hostOverride = undefined;
      const nextHeaders = { ...req.headers };
      if (next.hostname !== originalHost) for (const h of CREDENTIAL_HEADERS) delete nextHeaders[h];
      let { method, body } = req;
      // 303 always, and 301/302 after a POST, turn into a GET without a body (RFC 9110 §15.4, browsers, Go).
      if (
        (head.status === 303 && method !== 'HEAD') ||
        ((head.status === 301 || head.status === 302) && method === 'POST')
      ) {
        method = 'GET';
        body = undefined;
        delete nextHeaders['content-type'];
        delete nextHeaders['content-length'];
      }
      req = { url: next, method, headers: nextHeaders, body };
    }
  }

  /** One request on a fresh connection: resolve, connect, TLS, then send and wait for the response head. */
  async hop(
    req: OutgoingRequest,
    hostOverride: string | undefined,
    material: TlsMaterial,
  ): Promise<ResponseHead> {
    const { opts, ctx } = this;
    const secure = req.url.protocol === 'https:';
    const wantH2 = normalizeVersion(opts.httpVersion) === '2';
    const port = req.url.port !== '' ? Number(req.url.port) : secure ? 443 : 80;
    this.detail.url = req.url.href;
    this.values.http_ssl = secure ? 1 : 0;
    // TLS facts describe the final hop only, as blackbox's do.
    delete this.values.ssl_earliest_cert_expiry;
    delete this.values.ssl_last_chain_expiry_timestamp_seconds;
    for (const key of TLS_DETAIL_KEYS) delete this.detail[key];

    const t0 = this.now();
    const resolved = await resolveHost(req.url.hostname, opts.ipProtocol, ctx.clock, ctx.signal);
    const t1 = this.now();
    this.add('resolve', t1 - t0);
    this.detail.address = resolved.address;
    this.values.ip_protocol = resolved.family;

    const tcp = await connectTcp(resolved.address, resolved.family, port, this.owned, ctx.signal);
    let socket = tcp.socket;
    let ready = this.now();
    // The kernel's handshake RTT when it can be had (see kernel-tcp.ts); else our clock around connect.
    this.add('connect', tcp.kernelNs ?? ready - t1);
    // One user-timed hop makes the whole run's connect figure user-timed.
    this.detail.timing = tcp.kernelNs === undefined || this.detail.timing === 'user' ? 'user' : 'kernel';

    let useH2 = wantH2;
    if (secure) {
      const hostname = req.url.hostname.replace(/^\[(.*)\]$/, '$1');
      const alpn = wantH2 ? ['h2', 'http/1.1'] : ['http/1.1'];
      const tlsSocket = await startTls(socket, hostname, opts.tls, material, alpn, this.owned, ctx.signal);
      const t2 = this.now();
      this.add('tls', t2 - ready);
      ready = t2;
      socket = tlsSocket;
      // With ALPN the server chooses; a server that ignores ALPN speaks HTTP/1.1.
      useH2 = tlsSocket.alpnProtocol === 'h2';
      this.recordTls(tlsSocket);
    }

    const outgoing: OutgoingRequest = {
      ...req,
      headers: { ...req.headers, host: hostOverride ?? req.url.host },
    };
    const send = useH2 ? requestH2 : requestH1;
    const head = await send(socket, outgoing, ctx.clock, this.owned, ctx.signal);
    // Processing runs from the request being written (HTTP/1.1; for HTTP/2, the connection being ready)
    // to the first response byte: blackbox's gotConn -> GotFirstResponseByte, minus our own time to
    // build the request.
    this.add('processing', head.firstByteNs - (head.sentNs ?? ready));
    this.values.http_status_code = head.status;
    this.values.http_version = head.version === '1.0' ? 1 : head.version === '1.1' ? 1.1 : 2;
    this.detail.httpVersion = `HTTP/${head.version}`;
    return head;
  }

  recordTls(socket: TLSSocket): void {
    const chain = summarizePeerChain(socket);
    this.detail.tlsVersion = socket.getProtocol() ?? undefined;
    this.detail.tlsCipher = socket.getCipher()?.name;
    this.detail.alpn = socket.alpnProtocol || undefined;
    if (!socket.authorized && socket.authorizationError) {
      this.detail.tlsAuthorizationError = String(socket.authorizationError);
    }
    if (chain === undefined) return;
    this.values.ssl_earliest_cert_expiry = chain.earliestExpiry;
    // Only a chain OpenSSL verified is a "chain" in blackbox's sense of this metric.
    if (socket.authorized) this.values.ssl_last_chain_expiry_timestamp_seconds = chain.earliestExpiry;
    this.detail.certSubject = chain.leaf.subject;
    this.detail.certIssuer = chain.leaf.issuer;
    this.detail.certNotAfter = chain.leaf.notAfter;
    this.detail.certFingerprint256 = chain.leaf.fingerprint256;
  }

  /** Reads the final body (timing the transfer) and applies every check. */
  async judge(final: { head: ResponseHead; note: string }): Promise<ProbeError | undefined> {
    const { head, note } = final;
    const { opts, ctx } = this;
    const keep = needsBody(opts);
    const encoding = head.headers['content-encoding'];
    const read = await readBody(
      head.body,
      typeof encoding === 'string' ? encoding : undefined,
      { maxBytes: opts.maxBodyBytes, keep },
      ctx.clock,
      this.owned,
      ctx.signal,
      head.bodyEndNs,
    );
    this.add('transfer', read.endNs - head.firstByteNs);
    const declared = Number(head.headers['content-length']);
    // The declared length when there is one (what blackbox reports), else what arrived on the wire.
    if (head.headers['content-length'] !== undefined && Number.isFinite(declared)) {
      this.values.http_content_length = declared;
    } else if (!read.truncated) {
      this.values.http_content_length = read.wireBytes;
    }
    this.values.http_uncompressed_body_length = read.bodyBytes;
    if (read.truncated) this.detail.bodyTruncated = true;
    const lastModified = head.headers['last-modified'];
    if (lastModified !== undefined && Number.isFinite(Date.parse(lastModified))) {
      this.values.http_last_modified_timestamp_seconds = Date.parse(lastModified) / 1000;
    }
    const statusProblem = checkStatusAndVersion(head.status, head.version, opts, note);
    if (statusProblem !== undefined) return statusProblem;
    const headerProblem = checkHeaders(head.rawHeaders, opts);
    if (headerProblem !== undefined) return headerProblem;
    return read.body !== undefined ? checkBody(read.body.toString('utf8'), opts) : undefined;
  }
}

export default defineProbe({
  kind: 'http',
  summary: 'HTTP(S) request with blackbox-style phase timings, status, body, JSON and certificate checks',
  targetForm: TARGET_FORM,
  phases: ['resolve', 'connect', 'tls', 'processing', 'transfer'],
  values: {
    ...IP_PROTOCOL,
    ...TLS_CHAIN,
    http_status_code: 'HTTP status code of the last response',
    http_version: 'HTTP version of the last response',
    http_ssl: 'Whether the final request used TLS (1) or not (0)',
    http_redirects: 'Number of redirects followed',
    http_content_length: 'Content-Length of the response, -1 if absent',
    http_uncompressed_body_length: 'Bytes of response body read',
    http_last_modified_timestamp_seconds: "Unix time in seconds of the response's Last-Modified header",
  },
  compatPrefix: 'http',
  options: httpOptions,
  validateTarget: validateHttpTarget,
  run(target, opts, ctx) {
    return new HttpRun(opts, ctx).execute(target);
  },
});
