import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';
import { msToNs, nsToSeconds } from '../../core/clock.js';
import type { Phases, ProbeContext, ProbeError, ProbeResult, ProbeValues } from '../../core/types.js';
import { toProbeError } from '../net-errors.js';
import { defineProbe } from '../probe.js';
import { ipProtocolOption, resolveHost } from '../resolve.js';
import { loadIcmpAddon, socketOpenError, type IcmpNativeSocket } from './native.js';
import { EchoRound, rttStats, type RoundSummary } from './round.js';
import { IP_PROTOCOL } from '../shared-values.js';

const options = z.strictObject({
  packets: z
    .int()
    .min(1)
    .max(100)
    .default(5)
    .describe('Echo requests per run, each with its own sequence number'),
  packetIntervalMs: z
    .number()
    .min(10)
    .max(60_000)
    .default(200)
    .describe('Milliseconds between two echo requests of a run (at least 10)'),
  replyTimeoutMs: z
    .number()
    .min(1, 'must be from 1 to 86400000 (24h)')
    .max(86_400_000, 'must be from 1 to 86400000 (24h)')
    .optional()
    .describe(
      'Milliseconds to wait for each reply before counting it lost, 1 to 86400000; by default, until the run times out',
    ),
  payloadBytes: z
    .int()
    .min(0)
    .max(65_400)
    .default(56)
    .describe('Bytes of data after the 8-byte ICMP header (56 makes the 64-byte packets ping sends)'),
  ttl: z.int().min(1).max(255).optional().describe('IP time to live (IPv6 hop limit) of the requests'),
  dontFragment: z
    .boolean()
    .default(false)
    .describe('Set the IPv4 do-not-fragment bit (IPv6: never fragment locally), to probe the path MTU'),
  ipProtocol: ipProtocolOption,
  socketMode: z
    .enum(['auto', 'dgram', 'raw'])
    .default('auto')
    .describe(
      'ICMP socket: dgram (unprivileged, needs net.ipv4.ping_group_range), raw (root or CAP_NET_RAW), or auto (dgram, else raw)',
    ),
});

type IcmpOptions = z.output<typeof options>;

const HOST_NAME =
  /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

function bareHost(target: string): string {
  const t = target.trim();
  return t.startsWith('[') && t.endsWith(']') ? t.slice(1, -1) : t;
}

export default defineProbe({
  kind: 'icmp',
  summary: 'ICMP echo (ping): loss, round-trip time and jitter over a few packets',
  targetForm: 'host name, IPv4 or IPv6 address (no port)',
  phases: ['resolve', 'setup', 'rtt'],
  values: {
    ...IP_PROTOCOL,
    icmp_packets_sent: 'ICMP echo requests sent in the last round',
    icmp_packets_received: 'ICMP echo replies received in the last round',
    icmp_packet_loss_ratio: 'Fraction of ICMP echo requests of the last round left unanswered',
    icmp_rtt_min_seconds: 'Smallest ICMP round-trip time of the last round',
    icmp_rtt_mean_seconds: 'Mean ICMP round-trip time of the last round',
    icmp_rtt_max_seconds: 'Largest ICMP round-trip time of the last round',
    icmp_rtt_median_seconds: 'Median ICMP round-trip time of the last round',
    icmp_rtt_stddev_seconds: 'Standard deviation of ICMP round-trip times of the last round',
    icmp_rtt_jitter_seconds: 'Mean difference between consecutive ICMP round-trip times of the last round',
    icmp_reply_hop_limit: 'Hop limit (TTL) of the ICMP reply',
  },
  compatPrefix: 'ping',
  options,
  validateTarget(target) {
    const host = bareHost(target);
    if (isIP(host) !== 0 || (HOST_NAME.test(host) && !/^[\d.]+$/.test(host))) return undefined;
    return `expected a host name or an IPv4/IPv6 address without a port or scheme (e.g. example.com, 192.0.2.1, 2001:db8::1)`;
  },
  run: runIcmp,
});

async function runIcmp(target: string, opts: IcmpOptions, ctx: ProbeContext): Promise<ProbeResult> {
  const clock = ctx.clock;
  const start = clock.nowNs();
  const phases: Phases = {};
  const values: ProbeValues = {};
  const detail: Record<string, unknown> = {};
  const fail = (error: ProbeError): ProbeResult => ({
    ok: false,
    durationNs: clock.nowNs() - start,
    phases,
    values,
    detail,
    error,
  });

  let address: string;
  let family: 4 | 6;
  try {
    const resolved = await resolveHost(bareHost(target), opts.ipProtocol, clock, ctx.signal);
    phases.resolve = resolved.durationNs;
    ({ address, family } = resolved);
    values.ip_protocol = family;
    detail.address = address;
  } catch (err) {
    return fail(toProbeError(err, { aborted: ctx.signal.aborted, timeoutMs: ctx.timeoutMs }));
  }

  const load = loadIcmpAddon();
  if (!load.ok) return fail(load.error);

  // The payload starts with a random token so that a reply meant for another pinger that happens to
  // share our identifier and sequence is recognised and not taken as ours.
  const payload = Buffer.alloc(opts.payloadBytes);
  for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
  randomBytes(Math.min(8, payload.length)).copy(payload);

  // One socket per run: the kernel (dgram) or our identifier allocator (raw) keeps runs apart, so
  // concurrent runs share no state, and the socket closes with the run.
  let round: EchoRound | undefined;
  let socket: IcmpNativeSocket;
  const setupStart = clock.nowNs();
  try {
    socket = new load.addon.IcmpSocket(
      family,
      opts.socketMode,
      { ...(opts.ttl !== undefined ? { ttl: opts.ttl } : {}), dontFragment: opts.dontFragment },
      (...args) => round?.onPacket(...args),
    );
  } catch (err) {
    return fail(socketOpenError(err, opts.socketMode, family));
  }
  phases.setup = clock.nowNs() - setupStart;
  detail.socketMode = socket.mode;
  detail.icmpId = socket.id;

  try {
    round = new EchoRound(
      family,
      socket.id,
      payload,
      opts.replyTimeoutMs !== undefined ? msToNs(opts.replyTimeoutMs) : undefined,
    );
    return await runRound(round, socket, address, payload, opts, ctx, start, fail, {
      phases,
      values,
      detail,
    });
  } finally {
    socket.close();
  }
}

async function runRound(
  round: EchoRound,
  socket: IcmpNativeSocket,
  address: string,
  payload: Buffer,
  opts: IcmpOptions,
  ctx: ProbeContext,
  start: bigint,
  fail: (error: ProbeError) => ProbeResult,
  out: { phases: Phases; values: ProbeValues; detail: Record<string, unknown> },
): Promise<ProbeResult> {
  const { clock, signal } = ctx;
  // Finish a little before the run's timeout, so a round that loses packets still returns its
  // counts instead of being cut off by the abort.
  const deadline =
    Number.isFinite(ctx.timeoutMs) && ctx.timeoutMs > 0
      ? start + msToNs(ctx.timeoutMs) - msToNs(Math.min(50, ctx.timeoutMs * 0.05))
      : undefined;
  const pastDeadline = () => deadline !== undefined && clock.nowNs() >= deadline;

  let wake: (() => void) | undefined;
  round.onChange = () => wake?.();
  const sleepUntil = (atNs: bigint | undefined) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        wake = undefined;
        resolve();
      };
      const ms = atNs === undefined ? 2 ** 31 - 1 : Math.max(0, Number(atNs - clock.nowNs()) / 1e6);
      const timer = setTimeout(done, Math.min(ms, 2 ** 31 - 1));
      wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
  const earliest = (a: bigint | undefined, b: bigint | undefined) =>
    a === undefined ? b : b === undefined ? a : a < b ? a : b;

  let cutShort = false;
  let sendError: unknown;
  let sendErrors = 0;
  const intervalNs = msToNs(opts.packetIntervalMs);
  const firstSend = clock.nowNs();
  for (let i = 0; i < opts.packets; i++) {
    // Requests go out at fixed times from the first one, so a slow loop iteration does not stretch the round.
    const due = firstSend + BigInt(i) * intervalNs;
    while (!signal.aborted && !pastDeadline() && clock.nowNs() < due)
      await sleepUntil(earliest(due, deadline));
    if (signal.aborted || pastDeadline()) {
      cutShort = true;
      break;
    }
    try {
      const tx = socket.send(address, i, payload);
      round.recordSent(i, tx, clock.nowNs());
    } catch (err) {
      sendErrors++;
      sendError ??= err;
    }
  }
  if (!cutShort) {
    for (;;) {
      const now = clock.nowNs();
      if (signal.aborted || round.waiting(now) === 0 || pastDeadline()) break;
      await sleepUntil(earliest(round.nextExpiryNs(now), deadline));
    }
  }

  const summary = round.summary(clock.nowNs(), signal.aborted);
  fillResult(summary, out, sendErrors, sendError);
  const { values } = out;
  const end = clock.nowNs();

  if (signal.aborted) {
    const e = toProbeError(signal.reason, { aborted: true, timeoutMs: ctx.timeoutMs });
    return fail({ ...e, message: `${e.message}: ${counts(summary, opts.packets)}` });
  }
  if (cutShort) {
    return fail({
      code: 'timeout',
      message:
        `only ${summary.sent} of ${opts.packets} echo requests fit in the ${ctx.timeoutMs} ms timeout ` +
        `(${counts(summary, opts.packets)}): make the timeout longer than packets × packetIntervalMs ` +
        `(${opts.packets * opts.packetIntervalMs} ms) plus the round-trip time`,
    });
  }
  if (summary.sent === 0) {
    const e = toProbeError(sendError);
    return fail({ ...e, message: `cannot send echo requests to ${address}: ${e.message}` });
  }
  if (summary.received === 0) {
    const first = summary.errors[0];
    if (first) {
      return fail({
        code: 'unreachable',
        message: `${first.message} (reported by ${first.from || 'the local host'}): ${counts(summary, opts.packets)}`,
      });
    }
    return fail({
      code: 'timeout',
      message: `no echo reply from ${address}: ${counts(summary, opts.packets)}`,
    });
  }
  // The headline is the round trip, not the round: five packets 20 ms apart take 80 ms whatever the RTT.
  // durationNs stays the round's wall time, as blackbox_exporter's probe_duration_seconds.
  const networkNs = BigInt(Math.round((values.icmp_rtt_mean_seconds ?? 0) * 1e9));
  return { ok: true, durationNs: end - start, networkNs, phases: out.phases, values, detail: out.detail };
}

function counts(s: RoundSummary, planned: number): string {
  const parts = [`${s.sent} of ${planned} sent`, `${s.received} received`, `${s.lost} lost`];
  if (s.inFlight > 0) parts.push(`${s.inFlight} still in flight`);
  if (s.duplicates > 0) parts.push(`${s.duplicates} duplicated`);
  if (s.late > 0) parts.push(`${s.late} late`);
  return parts.join(', ');
}

function fillResult(
  s: RoundSummary,
  out: { phases: Phases; values: ProbeValues; detail: Record<string, unknown> },
  sendErrors: number,
  sendError: unknown,
): void {
  const { phases, values, detail } = out;
  values.icmp_packets_sent = s.sent;
  values.icmp_packets_received = s.received;
  if (s.sent - s.inFlight > 0) values.icmp_packet_loss_ratio = s.lost / (s.sent - s.inFlight);
  const stats = rttStats(s.rttsNs);
  if (stats) {
    phases.rtt = stats.medianNs;
    values.icmp_rtt_min_seconds = nsToSeconds(stats.minNs);
    values.icmp_rtt_max_seconds = nsToSeconds(stats.maxNs);
    values.icmp_rtt_median_seconds = nsToSeconds(stats.medianNs);
    values.icmp_rtt_mean_seconds = stats.meanSeconds;
    values.icmp_rtt_stddev_seconds = stats.stddevSeconds;
    values.icmp_rtt_jitter_seconds = stats.jitterSeconds;
  }
  if (s.hopLimit !== undefined) values.icmp_reply_hop_limit = s.hopLimit;
  Object.assign(detail, {
    sent: s.sent,
    received: s.received,
    lost: s.lost,
    inFlight: s.inFlight,
    duplicates: s.duplicates,
    late: s.late,
    corrupted: s.corrupted,
    rttsMs: s.rttsMs,
  });
  if (s.errorCount > 0) Object.assign(detail, { icmpErrors: s.errors, icmpErrorCount: s.errorCount });
  if (sendErrors > 0) {
    detail.sendErrors = sendErrors;
    detail.sendError = toProbeError(sendError).message;
  }
}
