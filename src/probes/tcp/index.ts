import { readFileSync } from 'node:fs';
import { Socket, connect as netConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { z } from 'zod';
import type { Phases, ProbeContext, ProbeResult, ProbeValues } from '../../core/types.js';
import { isValidRegex, RegexTimeLimitError, withRegexTimeLimit } from '../bounded-regex.js';
import { connectOnly, kernelConnectNs, type ConnectTiming } from '../kernel-tcp.js';
import { toProbeError } from '../net-errors.js';
import { defineProbe } from '../probe.js';
import { ipProtocolOption, resolveHost } from '../resolve.js';
import { tlsOptions } from '../tls-options.js';

const step = z.strictObject({
  send: z.string().optional().describe('Text to send (a trailing newline is not added for you)'),
  expect: z
    .string()
    .refine(isValidRegex, 'not a valid JavaScript regular expression')
    .optional()
    .describe(
      'Regular expression the data received so far (its last 1 MiB) must match; each try gets at most 50 ms',
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

/** `re.exec(text)` within the regex time limit (see bounded-regex.ts); running out fails the exchange. */
function execWithinLimit(re: RegExp, pattern: string, text: string): RegExpExecArray | null {
  try {
    return withRegexTimeLimit(pattern, () => re.exec(text));
  } catch (err) {
    if (err instanceof RegexTimeLimitError) throw new ExpectError(err.message);
    throw err;
  }
}

/** Sends and expects in order; each `expect` is matched against everything received since the last match. */
async function runExchange(socket: Socket, steps: z.output<typeof step>[], ctx: ProbeContext): Promise<void> {
  let buffer = '';
  const MAX = 1 << 20;
  let waiter: (() => void) | undefined;
  let failure: Error | undefined;
  const onData = (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    if (buffer.length > MAX) buffer = buffer.slice(-MAX);
    waiter?.();
  };
  const onEnd = (e?: Error) => {
    failure ??=
      e ??
      Object.assign(new Error('connection closed before the expected data arrived'), { code: 'ECONNRESET' });
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
      for (;;) {
        const m = execWithinLimit(re, s.expect, buffer);
        if (m) {
          buffer = buffer.slice(m.index + m[0].length);
          break;
        }
        if (ctx.signal.aborted) throw ctx.signal.reason;
        if (failure) {
          throw new ExpectError(
            `expected /${s.expect}/ but ${failure.message}; received ${JSON.stringify(buffer.slice(0, 200))}`,
          );
        }
        await new Promise<void>((r) => (waiter = r));
        waiter = undefined;
      }
    }
  } finally {
    socket.off('data', onData);
    ctx.signal.removeEventListener('abort', onAbort);
  }
}
