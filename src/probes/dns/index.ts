import { randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answer, Packet } from 'dns-packet';
import { z } from 'zod';
import { nsToSeconds } from '../../core/clock.js';
import type { Phases, ProbeContext, ProbeError, ProbeResult, ProbeValues } from '../../core/types.js';
import { toProbeError } from '../net-errors.js';
import { defineProbe } from '../probe.js';
import { ipProtocolOption, resolveHost } from '../resolve.js';
import { exchangeTcp, exchangeUdp, type ExchangeOutcome, type ExchangeTarget } from './exchange.js';
import { RCODE_NAMES, RECORD_TYPES, rcodeName, recordToText, reverseName } from './records.js';
import { formatSocketAddress, parseServerAddress } from './server-address.js';
import { querySystem } from './system.js';
import { checkRecords, recordValidationOption, type RecordValidation } from './validate.js';
import { IP_PROTOCOL } from '../shared-values.js';

const options = z
  .strictObject({
    server: z
      .string()
      .refine((s) => typeof parseServerAddress(s) !== 'string', {
        message: 'use host, host:port, [ipv6]:port or an IP address',
      })
      .optional()
      .describe(
        'DNS server to ask: host, host:port or [ipv6]:port (port 53 by default). ' +
          'Without it the system resolver answers, and only the total time is measured',
      ),
    transport: z
      .enum(['udp', 'tcp'])
      .default('udp')
      .describe('udp (retried over tcp when the answer comes back truncated) or tcp'),
    recordType: z.enum(RECORD_TYPES).default('A').describe('Record type to query'),
    recursionDesired: z.boolean().default(true).describe('Set the RD flag, asking the server to recurse'),
    validRcodes: z
      .array(z.enum(RCODE_NAMES))
      .min(1)
      .default(['NOERROR'])
      .describe('Response codes that count as success (NOERROR, NXDOMAIN, SERVFAIL, ...)'),
    failIfNoAnswer: z.boolean().default(false).describe('Fail when the answer section is empty'),
    validateAnswer: recordValidationOption.describe(
      'Regular expressions checked against each answer record in zone-file form ("name.\\tttl\\tIN\\tA\\t192.0.2.1")',
    ),
    validateAuthority: recordValidationOption.describe(
      'The same checks for the authority section (needs `server`: the system resolver does not expose it)',
    ),
    validateAdditional: recordValidationOption.describe(
      'The same checks for the additional section (needs `server`: the system resolver does not expose it)',
    ),
    ipProtocol: ipProtocolOption,
  })
  .superRefine((o, ctx) => {
    for (const key of ['validateAuthority', 'validateAdditional'] as const) {
      if (o[key] !== undefined && o.server === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `${key} needs \`server\`: the system resolver does not expose that section`,
        });
      }
    }
  });

type Options = z.output<typeof options>;

const MAX_NAME = 253;
const LABEL = /^[^\s.]{1,63}$/;

function checkName(target: string): string | undefined {
  const expected = 'a DNS name such as example.com (or an IP address, queried as its reverse name for PTR)';
  if (target === '.') return undefined;
  if (isIP(target) !== 0) return undefined;
  const bare = target.endsWith('.') ? target.slice(0, -1) : target;
  if (bare.length === 0 || bare.length > MAX_NAME) return `"${target}" is not ${expected}`;
  if (!bare.split('.').every((l) => LABEL.test(l) && Buffer.byteLength(l) <= 63)) {
    return `"${target}" is not ${expected}`;
  }
  return undefined;
}

/** The name actually asked: an IP address becomes its reverse name for PTR queries. */
function queryName(target: string, o: Options): string {
  if (o.recordType === 'PTR') return reverseName(target) ?? target;
  return target;
}

interface Section {
  rcode: number;
  answers: Answer[];
  authorities?: Answer[];
  additionals?: Answer[];
}

/**
 * Judges a response: counts and text go into values and detail whatever happens, then the rcode, the
 * empty-answer rule and the regexps decide success, in blackbox_exporter's order.
 */
function judge(
  res: Section,
  o: Options,
  durationNs: bigint,
  phases: Phases,
  values: ProbeValues,
  detail: Record<string, unknown>,
): ProbeResult {
  const name = rcodeName(res.rcode);
  const text = {
    answer: res.answers.map(recordToText),
    authority: res.authorities?.map(recordToText),
    additional: res.additionals?.map(recordToText),
  };
  values.dns_query_succeeded = 1;
  values.dns_rcode = res.rcode;
  values.dns_answer_rrs = res.answers.length;
  if (res.authorities) values.dns_authority_rrs = res.authorities.length;
  if (res.additionals) values.dns_additional_rrs = res.additionals.length;
  const soa = res.answers.find((rr) => rr.type === 'SOA');
  if (soa?.type === 'SOA' && soa.data.serial !== undefined) values.dns_serial = soa.data.serial;
  detail.rcode = name;
  detail.answers = text.answer;
  if (text.authority) detail.authorities = text.authority;
  if (text.additional) detail.additionals = text.additional;

  const fail = (error: ProbeError): ProbeResult => ({ ok: false, error, durationNs, phases, values, detail });
  if (!(o.validRcodes as readonly string[]).includes(name)) {
    const expected = o.validRcodes.length === 1 ? o.validRcodes[0] : `one of ${o.validRcodes.join(', ')}`;
    return fail({ code: 'dns', message: `got ${name}, expected ${expected}`, cause: name });
  }
  if (o.failIfNoAnswer && res.answers.length === 0) {
    return fail({ code: 'validation', message: `no ${o.recordType} records in the answer (failIfNoAnswer)` });
  }
  const checks: [string, string[] | undefined, RecordValidation | undefined][] = [
    ['answer', text.answer, o.validateAnswer],
    ['authority', text.authority, o.validateAuthority],
    ['additional', text.additional, o.validateAdditional],
  ];
  for (const [section, records, rules] of checks) {
    if (rules === undefined) continue;
    const why = checkRecords(section, records ?? [], rules);
    if (why !== undefined) return fail({ code: 'validation', message: why });
  }
  return { ok: true, durationNs, phases, values, detail };
}

async function runSystem(name: string, o: Options, ctx: ProbeContext): Promise<ProbeResult> {
  const start = ctx.clock.nowNs();
  const detail: Record<string, unknown> = {
    resolver: 'system',
    note: 'system resolver: only the total time is measured (as the resolve phase); TTLs and the authority and additional sections are not visible',
  };
  const out = await querySystem(name, o.recordType, ctx.signal, ctx.timeoutMs);
  const durationNs = ctx.clock.nowNs() - start;
  const phases: Phases = { resolve: durationNs };
  const values: ProbeValues = { dns_lookup_time_seconds: nsToSeconds(durationNs) };
  if (out.kind === 'failed') {
    values.dns_query_succeeded = 0;
    return { ok: false, error: out.error, durationNs, phases, values, detail };
  }
  if (out.cause !== undefined) detail.resolverError = out.cause;
  return judge({ rcode: out.rcode, answers: out.answers }, o, durationNs, phases, values, detail);
}

async function runServer(name: string, server: string, o: Options, ctx: ProbeContext): Promise<ProbeResult> {
  const { clock, signal } = ctx;
  const start = clock.nowNs();
  const phases: Phases = {};
  const values: ProbeValues = {};
  const detail: Record<string, unknown> = { transport: o.transport };
  const failed = (error: ProbeError): ProbeResult => {
    const durationNs = clock.nowNs() - start;
    values.dns_query_succeeded = 0;
    if (phases.resolve !== undefined) values.dns_lookup_time_seconds = nsToSeconds(phases.resolve);
    return { ok: false, error, durationNs, phases, values, detail };
  };

  // The schema already checked the form; this narrows the type.
  const addr = parseServerAddress(server);
  if (typeof addr === 'string') return failed({ code: 'error', message: addr });
  let target: ExchangeTarget;
  try {
    const r = await resolveHost(addr.host, o.ipProtocol, clock, signal);
    phases.resolve = r.durationNs;
    values.ip_protocol = r.family;
    target = { address: r.address, family: r.family, port: addr.port };
  } catch (err) {
    if (signal.aborted) return failed(toProbeError(err, { aborted: true, timeoutMs: ctx.timeoutMs }));
    const e = toProbeError(err);
    return failed({ ...e, code: 'dns', message: `cannot resolve DNS server "${addr.host}": ${e.message}` });
  }
  detail.server = formatSocketAddress(target.address, target.port);

  const query: Packet = {
    type: 'query',
    id: randomInt(0, 0x10000),
    flags: o.recursionDesired ? dnsPacket.RECURSION_DESIRED : 0,
    questions: [{ type: o.recordType, name, class: 'IN' }],
  };
  const xctx = { clock, signal, timeoutMs: ctx.timeoutMs };
  const record = (out: ExchangeOutcome) => {
    if ('connectNs' in out && out.connectNs !== undefined)
      phases.connect = (phases.connect ?? 0n) + out.connectNs;
    if (out.requestNs !== undefined) phases.request = (phases.request ?? 0n) + out.requestNs;
  };

  let out = await (o.transport === 'tcp' ? exchangeTcp : exchangeUdp)(target, query, xctx);
  record(out);
  if (o.transport === 'udp') values.dns_tcp_fallback = 0;
  if (out.kind === 'truncated') {
    // RFC 7766: a truncated UDP answer is retried over TCP; the time spent on UDP stays in `request`.
    values.dns_tcp_fallback = 1;
    detail.fallback = 'tcp';
    detail.transport = 'tcp';
    out = await exchangeTcp(target, query, xctx);
    record(out);
  }
  if (out.kind === 'failed') return failed(out.error);
  if (out.kind === 'truncated') return failed({ code: 'protocol', message: 'truncated answer over TCP' });

  const p = out.packet;
  const section: Section = {
    rcode: (p.flags ?? 0) & 0xf,
    answers: p.answers ?? [],
    authorities: p.authorities ?? [],
    additionals: p.additionals ?? [],
  };
  detail.authoritative = p.flag_aa;
  const durationNs = clock.nowNs() - start;
  // As in blackbox_exporter: the time spent resolving the host name of what we probe (here the server);
  // the query itself is the `request` phase.
  values.dns_lookup_time_seconds = nsToSeconds(phases.resolve ?? 0n);
  return judge(section, o, durationNs, phases, values, detail);
}

export default defineProbe({
  kind: 'dns',
  summary:
    'Queries a DNS server (UDP with TCP fallback, or TCP) or the system resolver and checks the answer',
  targetForm: 'a DNS name to query, e.g. example.example-corp.internal',
  phases: ['resolve', 'connect', 'request'],
  values: {
    ...IP_PROTOCOL,
    dns_lookup_time_seconds:
      'Seconds spent resolving the host name of what was probed (as blackbox_exporter)',
    dns_answer_rrs: 'Resource records in the answer section',
    dns_authority_rrs: 'Resource records in the authority section',
    dns_additional_rrs: 'Resource records in the additional section',
    dns_rcode: 'DNS response code',
    dns_query_succeeded: 'Whether the query got an answer that passed the checks (1) or not (0)',
    dns_serial: 'Serial number of the SOA record in the answer',
    dns_tcp_fallback: 'Whether a truncated UDP answer made the probe ask again over TCP (1) or not (0)',
  },
  compatPrefix: 'dns',
  options,
  validateTarget: checkName,
  run(target, o, ctx) {
    const name = queryName(target, o);
    return o.server === undefined ? runSystem(name, o, ctx) : runServer(name, o.server, o, ctx);
  },
});
