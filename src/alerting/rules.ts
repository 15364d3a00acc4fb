import { z } from 'zod';
import { describeRange, DURATION_RANGES, durationMs } from '../config/duration.js';
import { notifierSchema } from './notifier-config.js';
import { notifierKinds } from './notifiers/registry.js';

export const DEFAULT_EVALUATE_EVERY_MS = 15_000;
/** The longest M-of-N window; it bounds the history each rule keeps. */
export const MAX_DATAPOINTS = 100;

const ruleName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/,
    'a rule name is 1-128 letters, digits, "_", ".", ":" or "-", starting with a letter or digit',
  );

const above = (what: string) =>
  z
    .number({ error: `expected a number (${what})` })
    .min(0, `must be from 0 to 86400 (${what})`)
    .max(86_400, `must be from 0 to 86400 (${what})`);

const DAY_MS = 86_400_000;
/** How long a condition must hold, or data be missing: up to a week. */
const FOR_RANGE = { min: 0, max: 7 * DAY_MS };
const NO_DATA_RANGE = { min: 1000, max: 7 * DAY_MS };
const REPEAT_RANGE = { min: 1000, max: 7 * DAY_MS };

const CONDITION_KINDS = [
  'latency',
  'lossRatio',
  'duplicateRatio',
  'reorderRatio',
  'errorRate',
  'probeFailing',
  'noData',
  'certExpiringWithin',
] as const;

const ratioAbove = z.strictObject({
  above: z
    .number({ error: 'expected a ratio between 0 and 1' })
    .min(0, 'a ratio is between 0 and 1')
    .max(1, 'a ratio is between 0 and 1')
    .describe('Breaches when the ratio over the window is above this (0-1)'),
});

/**
 * Every condition is one key of this object; it is written as an object with optional keys (not a
 * union) so that a mistake gets a precise message at its own path instead of "invalid input".
 */
const conditionShape = z
  .strictObject(
    {
      latency: z
        .strictObject({
          percentile: z
            .union([z.literal(50), z.literal(90), z.literal(95), z.literal(99)], {
              error: 'percentile is one of 50, 90, 95, 99',
            })
            .describe('Which percentile of the window'),
          above: above('seconds').describe('Breaches when the percentile is above this many seconds'),
        })
        .optional(),
      lossRatio: ratioAbove.optional().describe('Share of pings lost (flows only)'),
      duplicateRatio: ratioAbove.optional().describe('Share of pings received twice (flows only)'),
      reorderRatio: ratioAbove.optional().describe('Share of pings received out of order (flows only)'),
      errorRate: ratioAbove.optional().describe('Share of probe runs or sends that failed'),
      probeFailing: z.strictObject({}).optional().describe('The probe is failing (targets only)'),
      noData: z
        .strictObject({
          for: durationMs('a duration', NO_DATA_RANGE).describe(
            `How long without any data, ${describeRange(NO_DATA_RANGE)}`,
          ),
        })
        .optional()
        .describe('No data arrived for a duration: data is no longer being processed'),
      certExpiringWithin: z
        .strictObject({
          days: z
            .number()
            .positive('days must be above 0')
            .max(3650, 'days must be at most 3650')
            .describe('Days, above 0 and at most 3650'),
        })
        .optional()
        .describe('The TLS certificate expires within this many days (targets only)'),
    },
    {
      error: (iss): string | undefined =>
        iss.code === 'unrecognized_keys'
          ? `unknown condition ${iss.keys.map((k) => JSON.stringify(k)).join(', ')} (one of ${CONDITION_KINDS.join(', ')})`
          : undefined,
    },
  )
  .describe('Exactly one condition');

export type ConditionKind = keyof z.output<typeof conditionShape>;
export const conditionKinds: readonly ConditionKind[] = CONDITION_KINDS;

/** A condition as the evaluator sees it: a tagged union. */
export type Condition =
  | { kind: 'latency'; percentile: 50 | 90 | 95 | 99; above: number }
  | { kind: 'lossRatio' | 'duplicateRatio' | 'reorderRatio' | 'errorRate'; above: number }
  | { kind: 'probeFailing' }
  | { kind: 'noData'; forMs: number }
  | { kind: 'certExpiringWithin'; days: number };

const flowOnly: ConditionKind[] = ['lossRatio', 'duplicateRatio', 'reorderRatio'];
const targetOnly: ConditionKind[] = ['probeFailing', 'certExpiringWithin'];

const datapoints = z
  .strictObject({
    m: z.number().int('m is a whole number').min(1, 'm must be at least 1'),
    n: z
      .number()
      .int('n is a whole number')
      .min(1, 'n must be at least 1')
      .max(MAX_DATAPOINTS, `n must be at most ${MAX_DATAPOINTS}`),
  })
  .refine((d) => d.m <= d.n, { message: 'm must not exceed n (m of the last n datapoints)', path: ['m'] })
  .describe('Fire when m of the last n datapoints breach (CloudWatch style); default 1 of 1');

const ruleSchema = z
  .strictObject({
    name: ruleName.describe('Unique name of this rule; the alertname'),
    target: z.string().min(1).optional().describe('The probe target this rule watches, by name'),
    flow: z
      .strictObject({ canary: z.string().min(1), coalminer: z.string().min(1) })
      .optional()
      .describe('The canary-to-coalminer flow this rule watches'),
    condition: conditionShape,
    datapoints: datapoints.default({ m: 1, n: 1 }),
    for: durationMs('a duration', FOR_RANGE)
      .optional()
      .describe(
        `How long the condition must hold before firing, ${describeRange(FOR_RANGE)}; pending meanwhile`,
      ),
    evaluateEvery: durationMs('a duration', DURATION_RANGES.interval)
      .optional()
      .describe(`How often to evaluate (15s), ${describeRange(DURATION_RANGES.interval)}`),
    missingData: z
      .enum(['breaching', 'notBreaching', 'ignore'], {
        error: 'missingData is one of breaching, notBreaching, ignore',
      })
      .default('notBreaching')
      .describe('How an evaluation without data counts; ignore keeps the state as it is'),
    repeatInterval: durationMs('a duration', REPEAT_RANGE)
      .optional()
      .describe(`Notify again this often while firing, ${describeRange(REPEAT_RANGE)}`),
    labels: z.record(z.string(), z.string()).default({}),
    annotations: z.record(z.string(), z.string()).default({}),
    notify: z
      .array(z.string().min(1))
      .optional()
      .describe('Names of the notifiers this rule notifies; every notifier when left out, none when []'),
  })
  .superRefine((r, ctx) => {
    if ((r.target === undefined) === (r.flow === undefined))
      ctx.addIssue({
        code: 'custom',
        message: 'a rule watches exactly one of target (a probe target name) or flow ({canary, coalminer})',
      });
    const kinds = Object.keys(r.condition) as ConditionKind[];
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['condition'],
        message: `exactly one condition is needed (one of ${conditionKinds.join(', ')})${kinds.length ? `, got ${kinds.join(', ')}` : ''}`,
      });
      return;
    }
    const kind = kinds[0]!;
    if (r.target !== undefined && flowOnly.includes(kind))
      ctx.addIssue({
        code: 'custom',
        path: ['condition', kind],
        message: `${kind} applies to a flow, not a target`,
      });
    if (r.flow !== undefined && targetOnly.includes(kind))
      ctx.addIssue({
        code: 'custom',
        path: ['condition', kind],
        message: `${kind} applies to a target, not a flow`,
      });
  })
  .transform((r): AlertRule => {
    const subject: AlertSubject =
      r.target !== undefined
        ? { target: r.target }
        : { flow: { canary: r.flow!.canary, coalminer: r.flow!.coalminer } };
    return {
      name: r.name,
      ...subject,
      condition: toCondition(r.condition),
      datapoints: r.datapoints,
      forMs: r.for ?? 0,
      evaluateEveryMs: r.evaluateEvery ?? DEFAULT_EVALUATE_EVERY_MS,
      missingData: r.missingData,
      ...(r.repeatInterval !== undefined && { repeatIntervalMs: r.repeatInterval }),
      labels: r.labels,
      annotations: r.annotations,
      ...(r.notify !== undefined && { notify: r.notify }),
    };
  });

function toCondition(c: z.output<typeof conditionShape>): Condition {
  if (c.latency) return { kind: 'latency', ...c.latency };
  if (c.lossRatio) return { kind: 'lossRatio', above: c.lossRatio.above };
  if (c.duplicateRatio) return { kind: 'duplicateRatio', above: c.duplicateRatio.above };
  if (c.reorderRatio) return { kind: 'reorderRatio', above: c.reorderRatio.above };
  if (c.errorRate) return { kind: 'errorRate', above: c.errorRate.above };
  if (c.probeFailing) return { kind: 'probeFailing' };
  if (c.noData) return { kind: 'noData', forMs: c.noData.for };
  return { kind: 'certExpiringWithin', days: c.certExpiringWithin!.days };
}

export type AlertSubject =
  { target: string; flow?: never } | { flow: { canary: string; coalminer: string }; target?: never };

/** What a rule watches, as labels: `target`, or `canary` and `coalminer`. */
export function subjectLabels(rule: AlertRule): { target: string } | { canary: string; coalminer: string } {
  return rule.target !== undefined
    ? { target: rule.target }
    : { canary: rule.flow.canary, coalminer: rule.flow.coalminer };
}

/** An alert's labels: `alertname`, the subject, then the rule's own labels. */
export function alertLabels(rule: AlertRule): Record<string, string> {
  return { alertname: rule.name, ...subjectLabels(rule), ...rule.labels };
}

/** A rule with every default applied and durations in milliseconds. */
export type AlertRule = AlertSubject & {
  name: string;
  condition: Condition;
  datapoints: { m: number; n: number };
  forMs: number;
  evaluateEveryMs: number;
  missingData: 'breaching' | 'notBreaching' | 'ignore';
  repeatIntervalMs?: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Notifier names; undefined means every notifier. */
  notify?: string[];
};

export const alertingConfigSchema = z
  .strictObject({
    rules: z
      .array(ruleSchema)
      .default([])
      .superRefine((rules, ctx) => {
        const seen = new Set<string>();
        rules.forEach((r, i) => {
          if (seen.has(r.name))
            ctx.addIssue({
              code: 'custom',
              path: [i, 'name'],
              message: `duplicate rule name ${JSON.stringify(r.name)}`,
            });
          seen.add(r.name);
        });
      })
      .describe('Alert rules, evaluated on the agent’s own windowed statistics'),
    notifiers: z
      .array(notifierSchema)
      .default([])
      .describe(`Where notifications go: ${notifierKinds.join(', ')}`),
    dashboardUrl: z
      .url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' })
      .optional()
      .describe(
        'The dashboard URL people open from a notification (default: the agent’s own listen address)',
      ),
  })
  .superRefine((a, ctx) => {
    const names = new Set<string>();
    a.notifiers.forEach((n, i) => {
      if (names.has(n.name))
        ctx.addIssue({
          code: 'custom',
          path: ['notifiers', i, 'name'],
          message: `duplicate notifier name ${JSON.stringify(n.name)}`,
        });
      names.add(n.name);
    });
    a.rules.forEach((r, i) =>
      r.notify?.forEach((name, j) => {
        if (!names.has(name))
          ctx.addIssue({
            code: 'custom',
            path: ['rules', i, 'notify', j],
            message: `no notifier named ${JSON.stringify(name)}${names.size ? ` (notifiers: ${[...names].join(', ')})` : ' (alerting.notifiers is empty)'}`,
          });
      }),
    );
  })
  .describe('Alerting: rules evaluated by the agent, and where their notifications go');

export type AlertingConfig = z.output<typeof alertingConfigSchema>;
