/**
 * The zod schemas of the API's JSON: the routes declare them, the OpenAPI document is generated from
 * them, and a test holds real responses against that document. The TypeScript types stay the source of
 * truth (contract.ts, store/series.ts, alerting/types.ts, core/report.ts): the checks at the end make
 * the compiler prove that each schema describes exactly its type.
 */
import { z } from 'zod';
import type { ProbeReport } from '../../core/report.js';
import type { ProbeErrorCode } from '../../core/types.js';
import type { ExportRecord } from './context.js';
import type {
  AgentStatus,
  AlertHistoryEntry,
  AlertRuleStatus,
  FlowSummary,
  Matrix,
  ScheduleSeries,
  Series,
  Silence,
  TargetSummary,
  WhoAmI,
} from './contract.js';

/**
 * A named schema: it becomes a component of the OpenAPI document, referenced by its id. (The id lives in
 * zod's global registry, beside the descriptions, where z.toJSONSchema finds both.)
 */
export function named<T extends z.ZodType>(id: string, schema: T): T {
  return schema.meta({ id }) as T;
}

let built: ReturnType<typeof build> | undefined;

/**
 * The answers' schemas, built on first use (the OpenAPI document and its test): the agent otherwise
 * never needs them, and as zod objects they are most of a megabyte of heap.
 */
export function responseSchemas(): ReturnType<typeof build> {
  return (built ??= build());
}

function build() {
  const num = z.number();
  const count = z.number().int().min(0);
  const nullableNum = z.number().nullable();
  const status = z.enum(['up', 'down', 'unknown']);
  const sparkline = z
    .array(z.tuple([z.number(), z.number().nullable(), count]))
    .describe('Points of the last hour: [time ms, p50 seconds or null, failures]');

  const errorSchema = named(
    'Error',
    z.object({
      error: z.object({
        code: z.string().describe('Stable, machine-readable: invalid_query, not_found, ...'),
        message: z.string().describe('What was wrong, for people'),
      }),
    }),
  );

  const probeErrorCodes = [
    'timeout',
    'refused',
    'unreachable',
    'reset',
    'dns',
    'tls',
    'http_status',
    'http_version',
    'validation',
    'expect',
    'protocol',
    'permission',
    'unsupported',
    'aborted',
    'error',
  ] as const satisfies readonly ProbeErrorCode[];

  const probeError = named(
    'ProbeError',
    z.object({ code: z.enum(probeErrorCodes), message: z.string(), cause: z.string().optional() }),
  );

  const probeReportSchema = named(
    'ProbeReport',
    z.object({
      name: z.string(),
      kind: z.string(),
      target: z.string(),
      time: z.iso.datetime({ offset: true }),
      ok: z.boolean(),
      durationSeconds: num.describe('Wall time of the run, as blackbox_exporter measures it'),
      networkSeconds: num
        .optional()
        .describe("Successful runs: the target's network time (kernel-timed phases; ICMP: mean RTT)"),
      phases: z.record(z.string(), num).describe('Seconds per phase'),
      values: z.record(z.string(), num).optional(),
      detail: z.record(z.string(), z.unknown()).optional(),
      error: probeError.optional(),
    }),
  );

  const targetSummarySchema = named(
    'TargetSummary',
    z.object({
      name: z.string(),
      kind: z.string(),
      target: z.string(),
      intervalSeconds: num,
      status,
      last: z
        .object({
          time: num,
          ok: z.boolean(),
          durationSeconds: num,
          networkSeconds: num.optional(),
          phases: z.record(z.string(), num),
          error: z.object({ code: z.string(), message: z.string() }).optional(),
        })
        .optional()
        .describe('The latest run, if any'),
      window: z
        .object({ p50: nullableNum, p95: nullableNum, successRatio: nullableNum, runs: count })
        .describe('Over the last hour, from the store'),
      sparkline,
    }),
  );

  const flowSummarySchema = named(
    'FlowSummary',
    z.object({
      canary: z.string(),
      coalminer: z.string(),
      transport: z.string(),
      region: z.string(),
      status,
      counts: z.object({
        expected: count,
        received: count,
        lost: count,
        inFlight: count,
        sendFailed: count,
        sendFailedArrived: count.describe('Of received: pings the canary said it failed to publish'),
        droppedLocally: count.describe('Reached the coalminer but its own full buffer dropped them'),
        duplicated: count,
        reordered: count,
        late: count,
        stale: count,
      }),
      window: z.object({
        p50: nullableNum,
        p95: nullableNum,
        p99: nullableNum,
        lossRatio: nullableNum,
        received: count,
      }),
      sparkline,
      clockOffset: z.object({ seconds: num, errorSeconds: num }).optional(),
    }),
  );

  const seriesPoint = named(
    'SeriesPoint',
    z.object({
      time: num.describe('Start of the step, Unix ms'),
      count,
      p1: nullableNum,
      p5: nullableNum,
      p50: nullableNum,
      p90: nullableNum,
      p95: nullableNum,
      p99: nullableNum,
      max: nullableNum,
      failures: count.describe('Probes: failed runs. Flows: pings declared lost'),
      duplicated: count.optional(),
      reordered: count.optional(),
      late: count.optional(),
      droppedLocally: count
        .optional()
        .describe('Flows: pings that reached the coalminer but its own full buffer dropped'),
      phases: z.record(z.string(), num).optional().describe('Mean seconds per phase (http)'),
      heatmap: z.array(count).optional(),
    }),
  );

  const resolution = z.enum(['raw', '1m', '1h']).describe('Which store tier answered');

  const seriesSchema = named(
    'Series',
    z.object({
      from: num,
      to: num,
      step: num,
      resolution,
      points: z.array(seriesPoint),
      heatmapBounds: z
        .array(num)
        .optional()
        .describe('Heatmap bucket edges in seconds (one more than each heatmap)'),
    }),
  );

  const schedulePoint = named(
    'SchedulePoint',
    z.object({
      time: num.describe('Start of the step, Unix ms'),
      due: count.describe('Pings that fell due in the step'),
      attempted: count.describe('Pings published or given up on in the step (sent + send-failed)'),
      behindSchedule: count.describe('The most pings due but not yet attempted at any sample in the step'),
      behindScheduleSeconds: num.min(0).describe('How far behind its schedule the canary was at worst'),
    }),
  );

  const scheduleSeriesSchema = named(
    'ScheduleSeries',
    z.object({ from: num, to: num, step: num, resolution, points: z.array(schedulePoint) }),
  );

  const matrixSchema = named(
    'Matrix',
    z.object({
      canaries: z.array(z.string()),
      coalminers: z.array(z.object({ name: z.string(), region: z.string() })),
      cells: z
        .array(z.array(z.object({ p95: nullableNum, lossRatio: nullableNum, status }).nullable()))
        .describe('cells[i][j]: canaries[i] -> coalminers[j], null where there is no flow'),
    }),
  );

  const agentStatusSchema = named(
    'AgentStatus',
    z.object({
      version: z.string(),
      startedAt: num,
      targets: count,
      flows: count,
      canaries: z
        .array(
          z.object({
            canary: z.string(),
            coalminer: z.string(),
            due: count,
            attempted: count,
            sent: count,
            sendFailed: count,
            behindSchedule: count,
            behindScheduleSeconds: num.min(0),
          }),
        )
        .optional()
        .describe("Each canary's schedule per coalminer: due = attempted + behindSchedule"),
      store: z.object({
        engine: z.enum(['sqlite', 'postgres', 'none']),
        queued: count,
        written: count,
        dropped: count,
        flushes: count,
        lastError: z.string().optional(),
      }),
      api: z
        .object({
          eventClients: count,
          eventClientsDropped: count,
          eventClientsRefused: count,
          rateLimited: count,
          checksRefused: count,
        })
        .optional(),
    }),
  );

  const whoAmISchema = named(
    'WhoAmI',
    z.object({
      name: z.string().describe("The token's configured name, never the token"),
      scopes: z.array(z.enum(['read', 'write'])),
    }),
  );

  const alertState = named('AlertState', z.enum(['ok', 'pending', 'firing', 'resolved']));

  const alertRuleStatusSchema = named(
    'AlertRuleStatus',
    z.object({
      rule: z.string().describe('The rule name; the alertname label'),
      subject: z
        .union([z.object({ target: z.string() }), z.object({ canary: z.string(), coalminer: z.string() })])
        .describe('What the rule watches: a probe target, or a canary -> coalminer flow'),
      condition: z.string().describe('As a person reads it, e.g. "p95 latency > 0.25 s"'),
      datapoints: z.object({ m: count, n: count }),
      forSeconds: num,
      evaluateEverySeconds: num,
      missingData: z.enum(['breaching', 'notBreaching', 'ignore']),
      state: alertState,
      activeSince: num.optional().describe('When the current pending or firing period began'),
      lastEvaluatedAt: num.optional(),
      lastValue: num.optional().describe('At the last evaluation with data, in the unit of the condition'),
      silencedBy: z.array(z.string()).describe('Ids of the active silences muting this rule now'),
      labels: z.record(z.string(), z.string()),
      annotations: z.record(z.string(), z.string()),
    }),
  );

  const alertHistoryEntrySchema = named(
    'AlertHistoryEntry',
    z.object({
      rule: z.string(),
      from: alertState,
      to: alertState,
      at: num.describe('Unix ms of the evaluation that made the change'),
      value: nullableNum.describe('The value then; null when it had no data'),
    }),
  );

  const silenceSchema = named(
    'Silence',
    z.object({
      id: z.string(),
      matchers: z
        .record(z.string(), z.string())
        .describe(
          'Mutes every rule whose labels (alertname, target or canary and coalminer, its own) equal all of these',
        ),
      startsAt: num,
      endsAt: num,
      comment: z.string(),
      createdBy: z.string(),
      active: z.boolean().describe('startsAt <= now < endsAt'),
    }),
  );

  /** One line of GET /export?format=jsonl: a raw probe run as the store keeps it. */
  const exportRecordSchema = named(
    'ExportRecord',
    z.object({
      time: num,
      name: z.string(),
      kind: z.string(),
      target: z.string(),
      ok: z.boolean(),
      durationSeconds: num,
      phases: z.record(z.string(), num),
      errorCode: z.string().optional(),
      errorMessage: z.string().optional(),
      values: z.record(z.string(), num).optional(),
    }),
  );

  /** The events of GET /events, for the document: each `data:` line is one of these as JSON. */
  const helloEventSchema = z.object({ version: z.string(), time: num });
  return {
    error: errorSchema,
    probeReport: probeReportSchema,
    targetSummary: targetSummarySchema,
    flowSummary: flowSummarySchema,
    series: seriesSchema,
    scheduleSeries: scheduleSeriesSchema,
    matrix: matrixSchema,
    agentStatus: agentStatusSchema,
    whoAmI: whoAmISchema,
    alertRuleStatus: alertRuleStatusSchema,
    alertHistoryEntry: alertHistoryEntrySchema,
    silence: silenceSchema,
    exportRecord: exportRecordSchema,
    helloEvent: helloEventSchema,
  };
}

// The compiler's proof that every schema above is exactly its type: a mismatch either way (a field
// missing, extra, optional on one side only, of another type) fails `npm run typecheck` here.
type S = ReturnType<typeof build>;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export type SchemasMatchTypes = [
  Same<z.output<S['probeReport']>, ProbeReport>,
  Same<z.output<S['targetSummary']>, TargetSummary>,
  Same<z.output<S['flowSummary']>, FlowSummary>,
  Same<z.output<S['series']>, Series>,
  Same<z.output<S['scheduleSeries']>, ScheduleSeries>,
  Same<z.output<S['matrix']>, Matrix>,
  Same<z.output<S['agentStatus']>, AgentStatus>,
  Same<z.output<S['whoAmI']>, WhoAmI>,
  Same<z.output<S['alertRuleStatus']>, AlertRuleStatus>,
  Same<z.output<S['alertHistoryEntry']>, AlertHistoryEntry>,
  Same<z.output<S['silence']>, Silence>,
  Same<z.output<S['exportRecord']>, ExportRecord>,
] extends true[]
  ? true
  : never;
const schemasMatchTypes: SchemasMatchTypes = true;
void schemasMatchTypes;
