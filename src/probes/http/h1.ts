import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Clock } from '../../core/clock.js';
import { raceAbort } from '../resolve.js';
import type { OwnedResources } from './connection.js';
import type { OutgoingRequest, ResponseHead } from './exchange.js';

/*
 * HTTP/1.1 written straight onto the probe's own socket, with a small response parser.
 *
 * Why not node:http: a probe run is one request on a fresh connection after the agent has idled, so
 * ClientRequest, its agent-less socket setup and the llhttp parser all run from cold caches, and every
 * microsecond of that sat between our timestamps. Here the request is one write of bytes prepared
 * before the clock starts, and the timestamps are taken in the socket's 'data' handler, the first
 * JavaScript that sees the bytes, before any parsing. The parser covers what a response can be:
 * status line, headers, 1xx interim responses, Content-Length, chunked and close-delimited bodies.
 */

/** Node's default limit (--max-http-header-size), so a response node:http accepts, this accepts. */
const MAX_HEAD_BYTES = 16 * 1024;
const MAX_CHUNK_LINE = 4096;

/** An error with the code llhttp or Node would have used, so the probe classifies it the same way. */
function codedError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// A header value must not smuggle a line break (or NUL) into the request.
const BAD_VALUE = /[\r\n\0]/;
// RFC 9110 §8.6: a user agent should send Content-Length for a request that could carry a body.
const NO_BODY_METHODS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

/** The request's bytes. Throws, as node:http does, on a header that would break the framing. */
export function serializeRequest(req: OutgoingRequest): Buffer {
  let head = `${req.method} ${req.url.pathname}${req.url.search} HTTP/1.1\r\n`;
  const headers = req.headers;
  if (headers.host !== undefined) head += `host: ${headers.host}\r\n`;
  for (const name in headers) {
    if (name === 'host') continue;
    const value = headers[name] as string;
    if (!TOKEN.test(name)) throw codedError(`invalid header name "${name}"`, 'ERR_INVALID_HTTP_TOKEN');
    if (BAD_VALUE.test(value)) throw codedError(`invalid character in header "${name}"`, 'ERR_INVALID_CHAR');
    head += `${name}: ${value}\r\n`;
  }
  // One request per connection: the server may close when it is done, and a close-delimited body ends.
  if (headers.connection === undefined) head += 'connection: close\r\n';
  const framed = headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined;
  const body = req.body === undefined ? undefined : Buffer.from(req.body, 'utf8');
  if (!framed && (body !== undefined || !NO_BODY_METHODS.has(req.method.toUpperCase()))) {
    head += `content-length: ${body?.length ?? 0}\r\n`;
  }
  head += '\r\n';
  const bytes = Buffer.from(head, 'latin1');
  return body === undefined ? bytes : Buffer.concat([bytes, body]);
}

// Node keeps the first of these when a response repeats them, and joins the others with ", ".
const SINGLE = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

interface ParsedHead {
  status: number;
  minor: 0 | 1;
  headers: IncomingHttpHeaders;
  /** Each header line, `[name, value, ...]` as Node's rawHeaders, names in lower case. */
  rawHeaders: string[];
}

/** Parses a response head (without its final empty line). Throws with llhttp's codes. */
export function parseHead(text: string): ParsedHead {
  const lines = text.split(/\r?\n/);
  const m = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/.exec(lines[0] ?? '');
  if (!m) {
    throw codedError(
      `not an HTTP/1.x status line: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`,
      'HPE_INVALID_CONSTANT',
    );
  }
  const headers: IncomingHttpHeaders = {};
  const rawHeaders: string[] = [];
  let last: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line === '') continue;
    // obs-fold (RFC 9112 §5.2): a continuation line belongs to the previous header's value.
    if ((line[0] === ' ' || line[0] === '\t') && last !== undefined) {
      const prev = headers[last];
      if (typeof prev === 'string') headers[last] = `${prev} ${line.trim()}`;
      rawHeaders[rawHeaders.length - 1] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).toLowerCase() : '';
    if (!TOKEN.test(name))
      throw codedError(
        `invalid header line ${JSON.stringify(line.slice(0, 80))}`,
        'HPE_INVALID_HEADER_TOKEN',
      );
    const value = line.slice(colon + 1).trim();
    last = name;
    rawHeaders.push(name, value);
    const prev = headers[name];
    if (name === 'set-cookie') {
      headers['set-cookie'] = [...((prev as string[] | undefined) ?? []), value];
    } else if (prev === undefined) {
      headers[name] = value;
    } else if (!SINGLE.has(name)) {
      headers[name] = `${prev as string}, ${value}`;
    } else if (name === 'content-length' && prev !== value) {
      // Node keeps the first copy of most single headers, but differing lengths mean broken framing.
      throw codedError('conflicting Content-Length headers', 'HPE_UNEXPECTED_CONTENT_LENGTH');
    }
  }
  return { status: Number(m[2]), minor: m[1] === '0' ? 0 : 1, headers, rawHeaders };
}

type Framing =
  { kind: 'none' } | { kind: 'length'; remaining: number } | { kind: 'chunked' } | { kind: 'close' };

/** How the body of this response ends (RFC 9112 §6.3). */
function framingOf(method: string, head: ParsedHead): Framing {
  const { status, headers } = head;
  if (method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    return { kind: 'none' };
  }
  const te = headers['transfer-encoding'];
  if (te !== undefined) {
    return /(?:^|,)\s*chunked\s*$/i.test(te) ? { kind: 'chunked' } : { kind: 'close' };
  }
  const cl = headers['content-length'];
  if (cl !== undefined) {
    if (!/^\d{1,15}$/.test(cl))
      throw codedError(`invalid Content-Length "${cl}"`, 'HPE_INVALID_CONTENT_LENGTH');
    const n = Number(cl);
    return n === 0 ? { kind: 'none' } : { kind: 'length', remaining: n };
  }
  return { kind: 'close' };
}

/**
 * Sends one request on a connected (and, for https, TLS) socket and resolves with the response head.
 * The head's `body` streams the decoded-from-chunking body; `bodyEndNs()` tells when its last byte
 * arrived, `sentNs` when the request was written.
 */
export function requestH1Raw(
  socket: Socket,
  req: OutgoingRequest,
  clock: Clock,
  owned: OwnedResources,
  signal: AbortSignal,
): Promise<ResponseHead> {
  const bytes = serializeRequest(req);
  const method = req.method.toUpperCase();
  const head = new Promise<ResponseHead>((resolve, reject) => {
    let firstByteNs: bigint | undefined;
    let endNs: bigint | undefined;
    let pending: Buffer | undefined; // head bytes so far
    let body: Readable | undefined;
    let framing: Framing | undefined;
    // Chunked decoding state.
    let chunkState: 'size' | 'data' | 'data-end' | 'trailers' = 'size';
    let chunkLeft = 0;
    let line = '';
    let done = false;

    const finish = (now: bigint) => {
      done = true;
      endNs = now;
      body?.push(null);
      detach();
    };
    const fail = (err: Error) => {
      done = true;
      detach();
      // Before the head: the request fails. After it: the body fails, and readBody reports it.
      if (body) body.destroy(err);
      else reject(err);
    };
    const emit = (data: Buffer) => {
      // Over the body's buffer limit: stop reading the socket until the consumer asks for more.
      if (body && !body.push(data)) socket.pause();
    };

    /** Consumes body bytes from `buf` at `at`; returns where it stopped. */
    const feedBody = (buf: Buffer, at: number, now: bigint): void => {
      if (!framing) return;
      if (framing.kind === 'close') {
        if (at < buf.length) emit(at === 0 ? buf : buf.subarray(at));
        return;
      }
      if (framing.kind === 'length') {
        const n = Math.min(framing.remaining, buf.length - at);
        if (n > 0) emit(buf.subarray(at, at + n));
        framing.remaining -= n;
        if (framing.remaining === 0) finish(now);
        return;
      }
      // chunked
      while (at < buf.length && !done) {
        if (chunkState === 'data') {
          const n = Math.min(chunkLeft, buf.length - at);
          emit(buf.subarray(at, at + n));
          at += n;
          chunkLeft -= n;
          if (chunkLeft === 0) chunkState = 'data-end';
          continue;
        }
        const nl = buf.indexOf(10, at);
        const end = nl === -1 ? buf.length : nl;
        line += buf.toString('latin1', at, end);
        if (line.length > MAX_CHUNK_LINE) throw codedError('chunk header too long', 'HPE_INVALID_CHUNK_SIZE');
        at = end;
        if (nl === -1) break;
        at += 1;
        const text = line.endsWith('\r') ? line.slice(0, -1) : line;
        line = '';
        if (chunkState === 'data-end') {
          if (text !== '') throw codedError('missing CRLF after chunk data', 'HPE_STRICT');
          chunkState = 'size';
        } else if (chunkState === 'size') {
          const hex = text.split(';', 1)[0]!.trim();
          if (!/^[0-9a-fA-F]{1,12}$/.test(hex))
            throw codedError(`invalid chunk size "${hex}"`, 'HPE_INVALID_CHUNK_SIZE');
          chunkLeft = parseInt(hex, 16);
          chunkState = chunkLeft === 0 ? 'trailers' : 'data';
        } else if (text === '') {
          finish(now); // the empty line after the trailers ends the message
        }
      }
    };

    const startBody = (parsed: ParsedHead, rest: Buffer, at: number, now: bigint) => {
      framing = framingOf(method, parsed);
      const stream = new Readable({ read: () => void socket.resume() });
      body = owned.add(stream);
      resolve({
        status: parsed.status,
        version: parsed.minor === 0 ? '1.0' : '1.1',
        headers: parsed.headers,
        rawHeaders: parsed.rawHeaders,
        firstByteNs: firstByteNs ?? now,
        sentNs,
        bodyEndNs: () => endNs,
        body: stream,
      });
      if (framing.kind === 'none') finish(now);
      else feedBody(rest, at, now);
    };

    const onData = (chunk: Buffer) => {
      // The first JavaScript to see the bytes: timestamps first, parsing after.
      const now = clock.nowNs();
      firstByteNs ??= now;
      if (done) return;
      try {
        if (framing) return feedBody(chunk, 0, now);
        pending = pending ? Buffer.concat([pending, chunk]) : chunk;
        for (;;) {
          if (pending.length >= 5 && pending.toString('latin1', 0, 5) !== 'HTTP/') {
            throw codedError(
              `response does not start with HTTP/: ${JSON.stringify(pending.toString('latin1', 0, 40))}`,
              'HPE_INVALID_CONSTANT',
            );
          }
          let end = pending.indexOf('\r\n\r\n');
          let sep = 4;
          if (end === -1) {
            end = pending.indexOf('\n\n');
            sep = 2;
          }
          if (end === -1) {
            if (pending.length > MAX_HEAD_BYTES)
              throw codedError('response head too large', 'HPE_HEADER_OVERFLOW');
            return;
          }
          const parsed = parseHead(pending.toString('latin1', 0, end));
          const at = end + sep;
          // Interim responses (100 Continue, 103 Early Hints) precede the real one; 101 would switch protocols.
          if (parsed.status >= 100 && parsed.status < 200 && parsed.status !== 101) {
            pending = pending.subarray(at);
            continue;
          }
          const rest = pending;
          pending = undefined;
          return startBody(parsed, rest, at, now);
        }
      } catch (err) {
        fail(err as Error);
      }
    };
    const onEnd = () => {
      if (done) return;
      const now = clock.nowNs();
      if (framing?.kind === 'close') return finish(now);
      fail(
        framing
          ? codedError('connection closed before the body ended', 'ECONNRESET')
          : pending
            ? codedError('connection closed in the middle of the response head', 'HPE_INVALID_EOF_STATE')
            : codedError('socket hang up', 'ECONNRESET'),
      );
    };
    const onError = (err: Error) => {
      if (!done) fail(err);
    };
    const detach = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onError);
    // Processing starts when the request leaves: the bytes are ready, so this is the write itself.
    const sentNs = clock.nowNs();
    socket.write(bytes);
  });
  return raceAbort(head, signal);
}
