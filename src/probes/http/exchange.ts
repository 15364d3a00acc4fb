import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { lazyBuiltin } from '../../core/builtin.js';
import type { Clock } from '../../core/clock.js';
import { raceAbort } from '../resolve.js';
import type { OwnedResources } from './connection.js';
import { requestH1Raw } from './h1.js';
import type { HttpVersion } from './options.js';

export interface OutgoingRequest {
  url: URL;
  method: string;
  /** Header names in lower case. Includes `host`. */
  headers: Record<string, string>;
  body: string | undefined;
}

export interface ResponseHead {
  status: number;
  version: HttpVersion;
  headers: IncomingHttpHeaders;
  /**
   * Each header line as received, names in lower case, flat as Node's rawHeaders (`[name, value, ...]`):
   * `headers` joins repeated headers with ", ", and the header checks judge each value on its own.
   */
  rawHeaders: string[];
  /** When the first byte of the response arrived. */
  firstByteNs: bigint;
  /** When the request was written, where the transport knows; else processing starts at "connection ready". */
  sentNs?: bigint;
  /** When the body's last byte arrived, once it has, where the transport knows (raw HTTP/1.1). */
  bodyEndNs?: () => bigint | undefined;
  body: Readable;
}

/** An error with a Node-style `code`, so toProbeError can classify it. */
function codedError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Sends one HTTP/1.1 request over an already connected socket and waits for the response head. */
export const requestH1 = requestH1Raw;

// Connection-specific headers are forbidden in HTTP/2 (RFC 9113 §8.2.2); Host becomes :authority.
const NOT_IN_H2 = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'host',
]);

/** Loaded for the first HTTP/2 request: most agents make none (see lazyBuiltin). */
const http2 = lazyBuiltin<typeof import('node:http2')>('node:http2');

/** Sends one HTTP/2 request on a new session over an already connected (and, for https, ALPN h2) socket. */
export function requestH2(
  socket: Socket,
  req: OutgoingRequest,
  clock: Clock,
  owned: OwnedResources,
  signal: AbortSignal,
): Promise<ResponseHead> {
  const { connect: h2Connect, constants: h2 } = http2();
  const head = new Promise<ResponseHead>((resolve, reject) => {
    const session = owned.add(h2Connect(req.url.origin, { createConnection: () => socket }));
    const headers: OutgoingHttpHeaders = {
      [h2.HTTP2_HEADER_METHOD]: req.method,
      [h2.HTTP2_HEADER_PATH]: req.url.pathname + req.url.search,
      [h2.HTTP2_HEADER_SCHEME]: req.url.protocol.slice(0, -1),
      [h2.HTTP2_HEADER_AUTHORITY]: req.headers.host ?? req.url.host,
    };
    for (const [name, value] of Object.entries(req.headers)) {
      if (!NOT_IN_H2.has(name)) headers[name] = value;
    }
    if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));
    const stream = owned.add(session.request(headers, { endStream: req.body === undefined }));
    const closedEarly = () =>
      reject(codedError('HTTP/2 connection closed before a response arrived', 'ERR_HTTP2_SESSION_CLOSED'));
    session.once('error', reject);
    session.once('close', closedEarly);
    stream.once('error', reject);
    stream.once('close', closedEarly);
    // HTTP/2 servers send SETTINGS before any response, so the first response byte is the HEADERS frame.
    // Node passes the header lines as a third argument its types do not declare.
    stream.once('response', (headers: IncomingHttpHeaders, _flags: number, rawHeaders?: string[]) => {
      resolve({
        status: Number(headers[h2.HTTP2_HEADER_STATUS]),
        version: '2',
        headers,
        rawHeaders: rawHeaders ?? [],
        firstByteNs: clock.nowNs(),
        body: stream,
      });
    });
    if (req.body !== undefined) stream.end(req.body);
  });
  return raceAbort(head, signal);
}

export interface BodyRead {
  /** Bytes received on the wire (still compressed when the server compressed them). */
  wireBytes: number;
  /** Bytes after decoding Content-Encoding. */
  bodyBytes: number;
  /** The decoded body, kept only when a check needs it. */
  body: Buffer | undefined;
  /** Reading stopped at maxBodyBytes. */
  truncated: boolean;
  endNs: bigint;
}

/** Thrown when a body check needs more than maxBodyBytes. */
export class BodyTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`body is larger than maxBodyBytes (${maxBytes} bytes) and a body check needs all of it`);
    this.name = 'BodyTooLargeError';
  }
}

function decoderFor(encoding: string | undefined) {
  switch (encoding?.trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return createGunzip();
    case 'deflate':
      return createInflate();
    case 'br':
      return createBrotliDecompress();
    default:
      return undefined;
  }
}

/**
 * Reads a response body to its end, decoding gzip, deflate and br. Beyond `maxBytes` decoded bytes it
 * stops reading (and counts what it read), unless `keep` says a check needs the body, which then fails.
 */
export function readBody(
  source: Readable,
  contentEncoding: string | undefined,
  opts: { maxBytes: number; keep: boolean },
  clock: Clock,
  owned: OwnedResources,
  signal: AbortSignal,
  wireEndNs?: () => bigint | undefined,
): Promise<BodyRead> {
  const read = new Promise<BodyRead>((resolve, reject) => {
    // The body may have failed before we were called (a reset right after the head).
    if (source.errored) return reject(source.errored);
    const decoder = decoderFor(contentEncoding);
    const out: Readable = decoder ? owned.add(decoder) : source;
    const chunks: Buffer[] = [];
    let wireBytes = 0;
    let bodyBytes = 0;
    let sourceEnded = false;
    let settled = false;
    const finish = (truncated: boolean) => {
      if (settled) return;
      settled = true;
      // The last byte's arrival where the transport saw it; decoding and stream hops after it are ours.
      const endNs = (truncated ? undefined : wireEndNs?.()) ?? clock.nowNs();
      resolve({
        wireBytes,
        bodyBytes,
        body: opts.keep ? Buffer.concat(chunks) : undefined,
        truncated,
        endNs,
      });
    };
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      reject(err);
    };
    source.on('data', (chunk: Buffer) => (wireBytes += chunk.length));
    source.once('end', () => (sourceEnded = true));
    source.once('error', fail);
    source.once('close', () => {
      if (!sourceEnded) fail(codedError('connection closed before the body ended', 'ECONNRESET'));
    });
    out.on('data', (chunk: Buffer) => {
      if (settled) return;
      bodyBytes += chunk.length;
      if (bodyBytes > opts.maxBytes) {
        if (opts.keep) fail(new BodyTooLargeError(opts.maxBytes));
        else finish(true);
        // Stop the transfer: the run destroys the connection next, but pausing stops counting now.
        source.pause();
        return;
      }
      if (opts.keep) chunks.push(chunk);
    });
    out.once('end', () => finish(false));
    if (decoder) {
      decoder.once('error', fail);
      source.pipe(decoder);
    }
  });
  return raceAbort(read, signal);
}
