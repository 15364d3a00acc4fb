import { readFileSync } from 'node:fs';
import { Socket, connect as netConnect } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { z } from 'zod';
import type { Phases, ProbeContext, ProbeResult, ProbeValues } from '../../core/types.js';
import { RegexTimeLimitError, withRegexTimeLimit } from '../bounded-regex.js';
import { connectOnly, kernelConnectNs, type ConnectTiming } from '../kernel-tcp.js';
import { toProbeError } from '../net-errors.js';
import { defineProbe } from '../probe.js';
import { ipProtocolOption, resolveHost } from '../resolve.js';
import { tlsOptions } from '../tls-options.js';
import { IP_PROTOCOL, TLS_CHAIN } from '../shared-values.js';

/** Why `source` is not a JavaScript regular expression (V8's words, e.g. "Unterminated group"), if it is not. */
function regexProblem(source: string): string | undefined {
  try {
    new RegExp(source);
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
  }
}

const step = z.strictObject({
  send: z.string().optional().describe('Text to send (a trailing newline is not added for you)'),
  expect: z
    .string()
    .superRefine((source, c) => {
      const problem = regexProblem(source);
      if (problem !== undefined)
        c.addIssue({ code: 'custom', message: `not a valid JavaScript regular expression (${problem})` });
    })
    .optional()
    .describe(
      'Regular expression tried on each line received (without its \\r\\n; an unterminated last line counts when the peer closes), in order, until one matches; the next expect starts after that line, as in blackbox_exporter. Lines are tried within 50 ms for each arrival of data',
    ),
});

const options = z.strictObject({
  tls: z
    .union([z.boolean(), tlsOptions])
    .default(false)
    .describe(
      'Start TLS after connecting: true, or the TLS settings {caFile, certFile, keyFile, insecureSkipVerify, serverName}',
    ),
  exchange: z
    .array(step)
    .default([])
    .describe('Steps run in order after connecting: send text, then wait for the received data to match'),
  ipProtocol: ipProtocolOption,
});

/** Splits `host:port` or `[v6]:port`; returns undefined when it is neither. */
export function splitHostPort(target: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(target.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2]) as string, port };
}

export default defineProbe({
  kind: 'tcp',
  summary: 'TCP connect time, optional TLS and a send/expect exchange',
  targetForm: 'host:port or [ipv6]:port',
  phases: ['resolve', 'connect', 'tls', 'exchange'],
  values: { ...IP_PROTOCOL, ...TLS_CHAIN },
  compatPrefix: 'tcp',
  options,
  validateTarget(target) {
    return splitHostPort(target) ? undefined : `expected host:port or [ipv6]:port with a port 1-65535`;
  },
  async run(target, opts, ctx): Promise<ProbeResult> {
    const start = ctx.clock.nowNs();
    const phases: Phases = {};
    const values: ProbeValues = {};
    const detail: { timing?: ConnectTiming } = {};
    const hp = splitHostPort(target);
    if (!hp) {
      return {
        ok: false,
        durationNs: 0n,
        phases,
        error: { code: 'validation', message: `bad target ${target}` },
      };
    }
    let socket: Socket | undefined;
    let secured: TLSSocket | undefined;
    const fail = (err: unknown): ProbeResult => ({
      ok: false,
      durationNs: ctx.clock.nowNs() - start,
      phases,
      values,
      detail,
      error: toProbeError(err, { aborted: ctx.signal.aborted, timeoutMs: ctx.timeoutMs }),
    });
    try {
      const resolved = await resolveHost(hp.host, opts.ipProtocol, ctx.clock, ctx.signal);
      phases.resolve = resolved.durationNs;
      values.ip_protocol = resolved.family;
      // Connect only (blackbox's tcp_connect): the addon connects and closes without a net.Socket.
      const only =
        opts.tls === false && opts.exchange.length === 0
          ? connectOnly(resolved.family, resolved.address, hp.port, ctx.clock, ctx.signal)
          : undefined;
      if (only) {
        // durationNs is the sum of the phases, as on the path below (see why there).
        const c = await only;
        phases.connect = c.connectNs;
        detail.timing = c.timing;
        return { ok: true, durationNs: (phases.resolve ?? 0n) + c.connectNs, phases, values, detail };
      }
      const t0 = ctx.clock.nowNs();
      socket = netConnect({ host: resolved.address, port: hp.port, family: resolved.family, noDelay: true });
      await socketEvent(socket, 'connect', ctx);
      const userConnect = ctx.clock.nowNs() - t0;
      const kernelConnect = kernelConnectNs(socket);
      phases.connect = kernelConnect ?? userConnect;
      detail.timing = kernelConnect === undefined ? 'user' : 'kernel';
      if (opts.tls !== false) {
        const t = opts.tls === true ? { insecureSkipVerify: false } : opts.tls;
        const t1 = ctx.clock.nowNs();
        const tlsSocket: TLSSocket = tlsConnect({
          socket,
          servername: t.serverName ?? (resolved.address === hp.host ? undefined : hp.host),
          rejectUnauthorized: !t.insecureSkipVerify,
          ...(t.caFile ? { ca: readFileSync(t.caFile) } : {}),
          ...(t.certFile ? { cert: readFileSync(t.certFile) } : {}),
          ...(t.keyFile ? { key: readFileSync(t.keyFile) } : {}),
        });
        socket = tlsSocket;
        await socketEvent(tlsSocket, 'secureConnect', ctx);
        secured = tlsSocket;
        phases.tls = ctx.clock.nowNs() - t1;
        const cert = tlsSocket.getPeerCertificate(false);
        if (cert?.valid_to) values.ssl_earliest_cert_expiry = Date.parse(cert.valid_to) / 1000;
      }
      if (opts.exchange.length > 0) {
        const t2 = ctx.clock.nowNs();
        await runExchange(socket, opts.exchange, ctx);
        phases.exchange = ctx.clock.nowNs() - t2;
      }
      // A successful probe lasts as long as its phases: the target's latency, not ours. Our own time
      // between phases (promise hops, the event loop noticing 'connect') is not the target's, and on
      // an idle machine it is several times the loopback handshake. blackbox_exporter bills its own
      // overhead; we do not. A failed probe keeps its wall time, which is what a timeout means.
      const durationNs =
        (phases.resolve ?? 0n) + (phases.connect ?? 0n) + (phases.tls ?? 0n) + (phases.exchange ?? 0n);
      return { ok: true, durationNs, phases, values, detail };
    } catch (err) {
      const result = fail(err);
      if (err instanceof ExpectError) {
        return { ...result, error: { code: 'expect', message: err.message } } as ProbeResult;
      }
      return result;
    } finally {
      if (secured) closeTls(secured);
      else socket?.destroy();
    }
  },
});

/** How long a TLS close may wait for the peer before the socket is destroyed anyway. */
const TLS_CLOSE_MS = 1000;

/**
 * Ends a TLS connection instead of destroying it: with TLS 1.3 the client's Finished is still being
 * written when 'secureConnect' fires, and destroy() discards it, so the server never completes the
 * handshake. end() flushes it and a close_notify; the socket is destroyed on close or after TLS_CLOSE_MS.
 */
function closeTls(socket: TLSSocket): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), TLS_CLOSE_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.on('error', () => socket.destroy());
  socket.end();
}

class ExpectError extends Error {}

function socketEvent(socket: Socket, event: 'connect' | 'secureConnect', ctx: ProbeContext): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      socket.off(event, onOk);
      socket.off('error', onErr);
      socket.off('close', onClose);
      ctx.signal.removeEventListener('abort', onAbort);
    };
    const onOk = () => {
      cleanup();
      resolve();
    };
    const onErr = (e: Error) => {
      cleanup();
      reject(e);
    };
    const onClose = () => {
      cleanup();
      reject(Object.assign(new Error('connection closed by peer'), { code: 'ECONNRESET' }));
    };
    const onAbort = () => {
      cleanup();
      socket.destroy();
      reject(ctx.signal.reason);
    };
    if (ctx.signal.aborted) return onAbort();
    socket.once(event, onOk);
    socket.once('error', onErr);
    socket.once('close', onClose);
    ctx.signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** At most this much of one line is held while waiting for its end; a longer line fails the exchange. */
const MAX_LINE = 1 << 20;
/** How much of the unmatched data a failure quotes. */
const QUOTE = 200;

/** Received data cut into lines as blackbox_exporter's scanner cuts them: without the `\n` and a `\r` before it. */
class LineReader {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  /** Complete lines not yet tried by an expect. */
  readonly lines: string[] = [];
  /** What arrived since the last match (the start of it), for a failure message. */
  unmatched = '';
  unmatchedLines = 0;
  /** Lines received in all, so a failure can tell "nothing arrived" from "nothing more arrived". */
  totalLines = 0;

  push(chunk: Buffer): void {
    const text = this.partial + this.decoder.write(chunk);
    const parts = text.split('\n');
    this.partial = parts.pop() as string;
    for (const line of parts) this.lines.push(line.endsWith('\r') ? line.slice(0, -1) : line);
    if (this.partial.length > MAX_LINE) {
      throw new ExpectError(`received a line longer than ${MAX_LINE} characters without a newline`);
    }
  }

  /** At the end of the data the last unterminated line counts as a line, as it does for blackbox. */
  end(): void {
    const rest = this.partial + this.decoder.end();
    this.partial = '';
    if (rest !== '') this.lines.push(rest);
  }

  /** Removes and returns the next line, noting it as unmatched until a match says otherwise. */
  next(): string | undefined {
    const line = this.lines.shift();
    if (line === undefined) return undefined;
    if (this.unmatched.length < QUOTE) this.unmatched += `${line}\n`;
    this.unmatchedLines++;
    this.totalLines++;
    return line;
  }

  matched(): void {
    this.unmatched = '';
    this.unmatchedLines = 0;
  }
}

/**
 * Tries `re` on each complete line received, in order, until one matches; lines tried are consumed
 * (the next expect starts after the matching line), as in blackbox_exporter. One call holds the regex
 * time limit for all the lines it tries (see bounded-regex.ts); running out fails the exchange.
 */
function matchLine(re: RegExp, pattern: string, reader: LineReader): boolean {
  try {
    return withRegexTimeLimit(pattern, () => {
      for (let line = reader.next(); line !== undefined; line = reader.next()) {
        re.lastIndex = 0;
        if (re.test(line)) return true;
      }
      return false;
    });
  } catch (err) {
    if (err instanceof RegexTimeLimitError) throw new ExpectError(err.message);
    throw err;
  }
}

/** Why an expect failed once the data ended: nothing arrived, or lines arrived and none matched. */
function unmatchedMessage(pattern: string, reason: string, reader: LineReader): string {
  if (reader.unmatchedLines === 0) {
    const what = reader.totalLines === 0 ? 'any data' : 'another line';
    return `expected a line matching /${pattern}/ but ${reason} before ${what} arrived`;
  }
  const n = reader.unmatchedLines;
  const quoted = reader.unmatched.length > QUOTE ? `${reader.unmatched.slice(0, QUOTE)}…` : reader.unmatched;
  return `expected a line matching /${pattern}/ but ${n === 1 ? 'the line received did not match' : `none of the ${n} lines received matched`} before ${reason}; received ${JSON.stringify(quoted)}`;
}

/** Sends and expects in order; each `expect` is tried on each line received after the last line matched. */
async function runExchange(socket: Socket, steps: z.output<typeof step>[], ctx: ProbeContext): Promise<void> {
  const reader = new LineReader();
  let waiter: (() => void) | undefined;
  let failure: Error | undefined;
  const onData = (chunk: Buffer) => {
    try {
      reader.push(chunk);
    } catch (err) {
      failure ??= err as Error;
    }
    waiter?.();
  };
  const onEnd = (e?: Error) => {
    reader.end();
    failure ??= e ?? Object.assign(new Error('the connection closed'), { code: 'ECONNRESET' });
    waiter?.();
  };
  const onAbort = () => waiter?.();
  socket.on('data', onData);
  socket.once('end', () => onEnd());
  socket.once('error', onEnd);
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (const s of steps) {
      if (s.send !== undefined) socket.write(s.send);
      if (s.expect === undefined) continue;
      const re = new RegExp(s.expect);
      reader.matched();
      for (;;) {
        if (matchLine(re, s.expect, reader)) {
          reader.matched();
          break;
        }
        if (ctx.signal.aborted) throw ctx.signal.reason;
        if (failure instanceof ExpectError) throw failure;
        if (failure) throw new ExpectError(unmatchedMessage(s.expect, failure.message, reader));
        await new Promise<void>((r) => (waiter = r));
        waiter = undefined;
      }
    }
  } finally {
    socket.off('data', onData);
    ctx.signal.removeEventListener('abort', onAbort);
  }
}
