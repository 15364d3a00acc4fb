import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { DecodedPacket, Packet, Question } from 'dns-packet';
import type { Clock } from '../../core/clock.js';
import type { ProbeError } from '../../core/types.js';
import { toProbeError } from '../net-errors.js';

export interface ExchangeTarget {
  address: string;
  family: 4 | 6;
  port: number;
}

export interface ExchangeContext {
  clock: Clock;
  signal: AbortSignal;
  timeoutMs: number;
}

/** How one query over one transport ended. Never a rejection: failures are values here too. */
export type ExchangeOutcome =
  | { kind: 'answer'; packet: DecodedPacket; connectNs?: bigint; requestNs: bigint }
  | { kind: 'truncated'; requestNs: bigint }
  | { kind: 'failed'; error: ProbeError; connectNs?: bigint; requestNs?: bigint };

const HEADER_BYTES = 12;
const FLAG_QR = 0x80; // in the third header byte
const FLAG_TC = 0x02; // in the third header byte

function sameQuestion(a: Question | undefined, b: Question): boolean {
  const norm = (n: string) => n.toLowerCase().replace(/\.$/, '');
  return (
    a !== undefined &&
    norm(a.name) === norm(b.name) &&
    a.type === b.type &&
    (a.class ?? 'IN') === (b.class ?? 'IN')
  );
}

type Verdict =
  | { kind: 'ignore' }
  | { kind: 'truncated' }
  | { kind: 'answer'; packet: DecodedPacket }
  | { kind: 'bad'; why: string };

/**
 * Judges one message from the server. Anything that is not plainly the answer to our query (wrong id,
 * not a response, another question) is ignored, so a stray or spoofed datagram cannot end the probe;
 * an undecodable message carrying our id is the server's fault and ends it as a protocol error.
 */
function judge(msg: Buffer, query: Packet, acceptTruncated: boolean): Verdict {
  if (msg.length < 2 || msg.readUInt16BE(0) !== query.id) return { kind: 'ignore' };
  if (msg.length < HEADER_BYTES)
    return { kind: 'bad', why: `response of ${msg.length} bytes is shorter than a DNS header` };
  if ((msg[2]! & FLAG_QR) === 0) return { kind: 'ignore' };
  // A truncated answer may be cut mid-record, so it is judged by its header alone.
  if (acceptTruncated && (msg[2]! & FLAG_TC) !== 0) return { kind: 'truncated' };
  let packet: DecodedPacket;
  try {
    packet = dnsPacket.decode(msg);
  } catch (err) {
    return { kind: 'bad', why: `undecodable response: ${(err as Error).message}` };
  }
  const asked = query.questions![0]!;
  // RFC 1035 allows a response without the question (e.g. some FORMERR/NOTIMP answers); accept those.
  const echoed = packet.questions ?? [];
  if (echoed.length > 0 && !sameQuestion(echoed[0], asked)) return { kind: 'ignore' };
  return { kind: 'answer', packet };
}

function timedOut(ctx: ExchangeContext): ProbeError {
  return toProbeError(undefined, { aborted: true, timeoutMs: ctx.timeoutMs });
}

/**
 * Sends the query over a connected UDP socket, so an ICMP port-unreachable comes back as ECONNREFUSED
 * instead of a silent wait for the timeout.
 */
export function exchangeUdp(
  target: ExchangeTarget,
  query: Packet,
  ctx: ExchangeContext,
): Promise<ExchangeOutcome> {
  const { clock, signal } = ctx;
  const sock = dgram.createSocket(target.family === 6 ? 'udp6' : 'udp4');
  let sentAt: bigint | undefined;
  let done = false;
  return new Promise<ExchangeOutcome>((resolve) => {
    const elapsed = () => (sentAt === undefined ? undefined : clock.nowNs() - sentAt);
    const finish = (outcome: ExchangeOutcome) => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      try {
        sock.close();
      } catch {
        // already closed by a failed bind or connect
      }
      resolve(outcome);
    };
    const fail = (error: ProbeError) => {
      const requestNs = elapsed();
      finish(requestNs === undefined ? { kind: 'failed', error } : { kind: 'failed', error, requestNs });
    };
    const onAbort = () => fail(timedOut(ctx));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });

    sock.on('error', (err) => fail(toProbeError(err)));
    sock.on('message', (msg) => {
      const v = judge(msg, query, true);
      if (v.kind === 'ignore') return;
      const requestNs = elapsed() ?? 0n;
      if (v.kind === 'truncated') finish({ kind: 'truncated', requestNs });
      else if (v.kind === 'answer') finish({ kind: 'answer', packet: v.packet, requestNs });
      else finish({ kind: 'failed', error: { code: 'protocol', message: v.why }, requestNs });
    });
    sock.connect(target.port, target.address, () => {
      if (done) return;
      sentAt = clock.nowNs();
      sock.send(dnsPacket.encode(query), (err) => {
        if (err) fail(toProbeError(err));
      });
    });
  });
}

/** Sends the query over a fresh TCP connection with RFC 1035's two-byte length framing. */
export function exchangeTcp(
  target: ExchangeTarget,
  query: Packet,
  ctx: ExchangeContext,
): Promise<ExchangeOutcome> {
  const { clock, signal } = ctx;
  const startedAt = clock.nowNs();
  let connectNs: bigint | undefined;
  let sentAt: bigint | undefined;
  let done = false;
  let sock: net.Socket | undefined;
  return new Promise<ExchangeOutcome>((resolve) => {
    const finish = (outcome: ExchangeOutcome) => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      sock?.destroy();
      resolve(outcome);
    };
    const fail = (error: ProbeError) => {
      const out: ExchangeOutcome = { kind: 'failed', error };
      if (connectNs !== undefined) out.connectNs = connectNs;
      if (sentAt !== undefined) out.requestNs = clock.nowNs() - sentAt;
      finish(out);
    };
    const onAbort = () => fail(timedOut(ctx));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });

    sock = net.connect({ host: target.address, port: target.port, family: target.family });
    sock.setNoDelay(true);
    let buffered: Buffer = Buffer.alloc(0);
    sock.on('error', (err) => fail(toProbeError(err)));
    sock.on('connect', () => {
      const now = clock.nowNs();
      connectNs = now - startedAt;
      sentAt = now;
      sock!.write(dnsPacket.streamEncode(query));
    });
    sock.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      // Buffering stops at one whole message: the length prefix caps it at 65,537 bytes.
      while (buffered.length >= 2 && !done) {
        const len = buffered.readUInt16BE(0);
        if (buffered.length < len + 2) return;
        const msg = buffered.subarray(2, len + 2);
        buffered = buffered.subarray(len + 2);
        const v = judge(msg, query, false);
        if (v.kind === 'ignore') continue;
        const requestNs = clock.nowNs() - (sentAt ?? startedAt);
        const base = connectNs === undefined ? { requestNs } : { requestNs, connectNs };
        if (v.kind === 'answer') finish({ kind: 'answer', packet: v.packet, ...base });
        else if (v.kind === 'bad')
          finish({ kind: 'failed', error: { code: 'protocol', message: v.why }, ...base });
      }
    });
    sock.on('end', () =>
      fail({ code: 'protocol', message: 'server closed the TCP connection before answering', cause: 'EOF' }),
    );
    sock.on('close', () =>
      fail({ code: 'reset', message: 'TCP connection closed before an answer arrived' }),
    );
  });
}
