import { z } from 'zod';
import { probeKinds, probes, type ProbeKind } from '../probes/registry.js';
import { alertingConfigSchema, type AlertingConfig } from '../alerting/rules.js';
import { apiConfigSchema, type ApiConfig } from '../api/v1/config.js';
import { otlpConfigSchema, type OtlpConfig } from '../sinks/otlp/config.js';
import { storeConfigSchema, type StoreConfig } from '../store/config.js';
import { redactText } from '../core/log.js';
import { describeRange, DURATION_RANGES, durationMs } from './duration.js';
import { canaryEntry, coalminerEntry, transportEntry, type MessagingConfig } from './messaging.js';
import { MAX_PROBE_WORKERS, type ProbeTarget, type ProbeWorkersSetting } from '../probes/workers/plan.js';

export const DEFAULT_INTERVAL_MS = 15_000;
export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_LISTEN = '127.0.0.1:9777';

/** Target names become label values and URL parameters, so keep them plain. */
const targetName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/,
    'a name is 1-128 letters, digits, "_", ".", ":" or "-", starting with a letter or digit',
  )
  .describe('Unique name of this target; the `target` label of its metrics');

/** Bucket bounds, in seconds: from a nanosecond (the clock's resolution) to a day. */
export const BUCKET_RANGE = { min: 1e-9, max: 86_400, maxCount: 100 } as const;

const bucketBound = z
  .number()
  .min(BUCKET_RANGE.min, `a bucket bound is from ${BUCKET_RANGE.min} to ${BUCKET_RANGE.max} seconds`)
  .max(BUCKET_RANGE.max, `a bucket bound is from ${BUCKET_RANGE.min} to ${BUCKET_RANGE.max} seconds`);

const exponentialBuckets = z.strictObject({
  exponential: z
    .strictObject({
      start: bucketBound.describe(
        `Upper bound of the first bucket, in seconds (${BUCKET_RANGE.min} to ${BUCKET_RANGE.max})`,
      ),
      factor: z
        .number()
        .gt(1)
        .max(100)
        .describe('Each bucket bound is the previous one times this (more than 1, at most 100)'),
      count: z
        .number()
        .int()
        .min(1)
        .max(BUCKET_RANGE.maxCount)
        .describe(`How many buckets (besides +Inf), 1 to ${BUCKET_RANGE.maxCount}`),
    })
    .superRefine((e, ctx) => {
      // zod runs this even when a field failed above: judge only fields that passed.
      const { start, factor, count } = e;
      if (!(start >= BUCKET_RANGE.min && factor > 1 && Number.isInteger(count) && count >= 1)) return;
      if (count > BUCKET_RANGE.maxCount) return;
      // Rounded to 6 digits as bucketBounds does: a factor near 1 repeats a bound, a large one overflows.
      const bounds = bucketBounds({ exponential: e });
      const last = bounds.at(-1)!;
      if (!(last <= BUCKET_RANGE.max))
        ctx.addIssue({
          code: 'custom',
          message: `the largest bucket, start x factor^(count-1) = ${last}, must be at most ${BUCKET_RANGE.max} seconds: lower count or factor`,
        });
      else if (bounds.some((b, i) => i > 0 && b <= bounds[i - 1]!))
        ctx.addIssue({
          code: 'custom',
          message: 'bucket bounds repeat at 6 significant digits: use a larger factor',
        });
    }),
});

export const bucketsSchema = z
  .union([
    z
      .array(bucketBound)
      .min(1)
      .max(BUCKET_RANGE.maxCount)
      .refine(
        (a) => a.every((v, i) => i === 0 || v > a[i - 1]!),
        'bucket bounds must be strictly increasing',
      ),
    exponentialBuckets,
  ])
  .describe(
    `Histogram bucket upper bounds in seconds (${BUCKET_RANGE.min} to ${BUCKET_RANGE.max}, at most ${BUCKET_RANGE.maxCount}): a list, or {exponential: {start, factor, count}}`,
  );

export const DEFAULT_BUCKETS = { exponential: { start: 0.0001, factor: 2, count: 18 } } as const;

/** Seed 001's Prometheus default buckets, kept for its compatibility metrics. */
export const LATENCY404_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** Targets are label values and go into every line about them: a URL is rarely longer. */
export const MAX_TARGET_LENGTH = 2048;

const intervalField = () => durationMs('a duration', DURATION_RANGES.interval);
const timeoutField = () => durationMs('a duration', DURATION_RANGES.timeout);

const baseTargetShape = {
  name: targetName,
  target: z.string().min(1).max(MAX_TARGET_LENGTH).describe('What to probe; its form depends on the kind'),
  interval: intervalField()
    .optional()
    .describe(
      `How often to probe, ${describeRange(DURATION_RANGES.interval)}; defaults to the top-level interval`,
    ),
  timeout: timeoutField()
    .optional()
    .describe(
      `How long one run may take, ${describeRange(DURATION_RANGES.timeout)}; must be below the interval. Defaults to min(timeout, 0.9 x interval)`,
    ),
};

function targetSchemaFor<K extends ProbeKind>(kind: K) {
  return z.strictObject({
    kind: z.literal(kind).describe(probes[kind].summary),
    ...baseTargetShape,
    target: z
      .string()
      .min(1)
      .max(MAX_TARGET_LENGTH)
      .superRefine((v, ctx) => {
        if (v.length > MAX_TARGET_LENGTH) return;
        const problem = probes[kind].validateTarget(v);
        // The value is echoed without its password, and short: errors end up in the same place as logs.
        if (problem)
          ctx.addIssue({ code: 'custom', message: `${problem} (got ${JSON.stringify(redactText(v, 200))})` });
      })
      .describe(`What to probe: ${probes[kind].targetForm}`),
    ...probes[kind].options.shape,
  });
}

const targetSchemas = probeKinds.map((k) => targetSchemaFor(k));

export const targetSchema = z.discriminatedUnion(
  'kind',
  targetSchemas as unknown as [(typeof targetSchemas)[number], ...(typeof targetSchemas)[number][]],
);

export const configSchema = z
  .strictObject({
    interval: intervalField()
      .optional()
      .describe(
        `Default probe interval (15s), ${describeRange(DURATION_RANGES.interval)}; the CHECK_INTERVAL or COALMINE_CHECK_INTERVAL environment variable overrides it`,
      ),
    timeout: timeoutField()
      .optional()
      .describe(
        `Default per-run timeout (10s), ${describeRange(DURATION_RANGES.timeout)}, always kept below each interval`,
      ),
    listen: z
      .string()
      .regex(
        /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/,
        'expected HOST:PORT, e.g. 127.0.0.1:9777 or [::1]:9777',
      )
      .refine((l) => Number(l.slice(l.lastIndexOf(':') + 1)) <= 65_535, 'the port is 0 to 65535')
      .optional()
      .describe('Address of the HTTP endpoints (/metrics, /healthz, /check); loopback by default'),
    metrics: z
      .strictObject({
        compat: z
          .array(z.enum(['latency404']))
          .default([])
          .describe("Extra metric name sets: 'latency404' adds seed 001's names for its Grafana dashboard"),
        buckets: bucketsSchema.optional(),
        targetBuckets: z
          .boolean()
          .default(false)
          .describe(
            'Per-target buckets for coalmine_probe_duration_seconds and coalmine_probe_network_seconds ({kind,target}); default false: those two histograms are per kind, about 40 fewer lines per target',
          ),
      })
      .default({ compat: [], targetBuckets: false })
      .describe('Prometheus metrics'),
    targets: z.array(targetSchema).default([]).describe('Network probe targets'),
    probes: z
      .strictObject({
        workers: z
          .union([z.literal('auto'), z.int().min(0).max(MAX_PROBE_WORKERS)], {
            error: `expected auto, 0 (probes on the main thread) or a number of worker threads up to ${MAX_PROBE_WORKERS}`,
          })
          .default('auto')
          .describe(
            `Worker threads that run the probes (targets shared out among them; results come back to the main thread): auto (the default) starts them only above 2,000 probes/s on 4 or more CPUs, one per 4,000 probes/s up to one less than the CPUs; 0: none; 1-${MAX_PROBE_WORKERS}: that many`,
          ),
      })
      .default({ workers: 'auto' })
      .describe('How the probes run'),
    transports: z
      .array(transportEntry)
      .default([])
      .describe('Messaging systems, named for canaries and coalminers'),
    canaries: z.array(canaryEntry).default([]).describe('Canaries: send sequenced pings through a transport'),
    coalminers: z
      .array(coalminerEntry)
      .default([])
      .describe('Coalminers: register with canaries and measure their pings'),
    store: z
      .union([storeConfigSchema, z.literal(false)])
      .optional()
      .describe('The results store (SQLite in ./data by default); false to keep no history'),
    api: apiConfigSchema.optional().describe('The HTTP API and dashboard: tokens, limits'),
    alerting: alertingConfigSchema.optional(),
    otlp: otlpConfigSchema.optional(),
  })
  .describe('coalmine agent configuration');

export type RawConfig = z.output<typeof configSchema>;
export type RawTarget = z.output<typeof targetSchema>;

/** A target with every default applied: what the scheduler and probes (in a worker thread too) get. */
export type TargetConfig = ProbeTarget;

export interface AgentConfig {
  intervalMs: number;
  listen: { host: string; port: number };
  /** targetBuckets: per-target histogram buckets (the schema's default is false). */
  metrics: { compat: 'latency404'[]; buckets: number[]; targetBuckets?: boolean };
  targets: TargetConfig[];
  /** Undefined: the schema's default (probes.workers auto). */
  probes?: { workers: ProbeWorkersSetting };
  messaging: MessagingConfig;
  /** Undefined: the default SQLite store; false: none. */
  store?: StoreConfig | false;
  api?: ApiConfig;
  /** Alert rules and notifiers; undefined when the file has no alerting: section. */
  alerting?: AlertingConfig;
  /** OTLP/HTTP metrics export; undefined: none. */
  otlp?: OtlpConfig;
}

export function bucketBounds(spec: z.output<typeof bucketsSchema>): number[] {
  if (Array.isArray(spec)) return [...spec];
  const { start, factor, count } = spec.exponential;
  return Array.from({ length: count }, (_, i) => Number((start * factor ** i).toPrecision(6)));
}

export function configJsonSchema(): Record<string, unknown> {
  return {
    title: 'coalmine configuration',
    ...(z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>),
  };
}
