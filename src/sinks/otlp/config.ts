import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { describeRange, DURATION_RANGES, durationMs } from '../../config/duration.js';
import { stripTrailing } from '../../core/text.js';
import { tlsOptions } from '../../probes/tls-options.js';
import { DEFAULT_MAX_BUCKETS } from './exponential-histogram.js';

export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];
export type OtlpCompression = 'gzip' | 'none';

export const DEFAULT_OTLP_INTERVAL_MS = 60_000;
export const DEFAULT_OTLP_TIMEOUT_MS = 10_000;
export const MIN_OTLP_INTERVAL_MS = 100;
/** The export interval, from the file or OTEL_METRIC_EXPORT_INTERVAL: 100ms to 24h. */
const INTERVAL_RANGE = { min: MIN_OTLP_INTERVAL_MS, max: DURATION_RANGES.interval.max };
export const DEFAULT_MAX_SERIES = 2000;

/** The `otlp:` section resolved with the standard environment variables and defaults. */
export interface OtlpConfig {
  /** The full URL metrics are posted to. */
  url: string;
  protocol: OtlpProtocol;
  /** Sent with every export (API keys): never logged. */
  headers: Record<string, string>;
  intervalMs: number;
  timeoutMs: number;
  compression: OtlpCompression;
  /** Resource attributes given by the user; service.name, service.version and host.name default under them. */
  resource: Record<string, string>;
  /** Most buckets of one exponential histogram (OpenTelemetry's default is 160). */
  maxBuckets: number;
  /** Most attribute sets of one metric; beyond, measurements go to one otel.metric.overflow=true series. */
  maxSeries: number;
  /** For an https:// URL: the CA to trust, a client certificate, or no check at all. */
  tls?: OtlpTls;
}

/** TLS material, read from its files when the config is loaded. */
export interface OtlpTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  servername?: string;
}

const httpUrl = z
  .string()
  .refine((v) => {
    try {
      return ['http:', 'https:'].includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, 'expected an http:// or https:// URL, e.g. http://127.0.0.1:4318')
  .transform((v) => v.trim());

/** RFC 9110 token: what a header name may be. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[^\r\n\0]*$/;

const protocolSchema = z
  .string()
  .transform((v, ctx) => {
    const p = protocolProblem(v);
    if (p) {
      ctx.addIssue({ code: 'custom', message: p });
      return z.NEVER;
    }
    return v as OtlpProtocol;
  })
  .describe('http/protobuf (the OTLP default) or http/json');

function protocolProblem(v: string): string | undefined {
  if (v === 'grpc')
    return 'OTLP over gRPC is not supported: use http/protobuf (the collector listens on 4318 for it) or http/json';
  if (!(OTLP_PROTOCOLS as readonly string[]).includes(v))
    return `expected http/protobuf or http/json (got ${JSON.stringify(v)})`;
  return undefined;
}

const headersSchema = z
  .record(z.string(), z.string())
  .superRefine((headers, ctx) => {
    for (const [name, value] of Object.entries(headers)) {
      if (!HEADER_NAME.test(name))
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `${JSON.stringify(name)} is not a header name: letters, digits and !#$%&'*+-.^_\`|~ only`,
        });
      else if (!HEADER_VALUE.test(value))
        ctx.addIssue({ code: 'custom', path: [name], message: 'a header value cannot hold a line break' });
    }
  })
  .describe(
    'HTTP headers sent with every export, e.g. an API key; never logged. OTEL_EXPORTER_OTLP_HEADERS adds to them',
  );

export const otlpConfigSchema = z
  .strictObject({
    endpoint: httpUrl
      .optional()
      .describe(
        "Base URL of the collector's OTLP/HTTP receiver, e.g. http://127.0.0.1:4318; /v1/metrics is appended. Default: OTEL_EXPORTER_OTLP_ENDPOINT",
      ),
    metricsEndpoint: httpUrl
      .optional()
      .describe(
        'The full URL to post metrics to, used as it is; wins over endpoint. Default: OTEL_EXPORTER_OTLP_METRICS_ENDPOINT',
      ),
    protocol: protocolSchema.optional(),
    headers: headersSchema.optional(),
    interval: durationMs('a duration', INTERVAL_RANGE)
      .optional()
      .describe(
        `How often to export (60s), ${describeRange(INTERVAL_RANGE)}; OTEL_METRIC_EXPORT_INTERVAL in ms`,
      ),
    timeout: durationMs('a duration', DURATION_RANGES.timeout)
      .optional()
      .describe(
        `How long one export may take, retries included (10s), ${describeRange(DURATION_RANGES.timeout)}; below the interval`,
      ),
    compression: z.enum(['gzip', 'none']).optional().describe('gzip the body (default none)'),
    resource: z
      .record(z.string().min(1), z.string())
      .optional()
      .describe(
        'Resource attributes, e.g. {deployment.environment: prod}; over OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME',
      ),
    maxBuckets: z
      .number()
      .int()
      .min(4)
      .max(1024)
      .optional()
      .describe('Most buckets of one exponential histogram (160): more is finer'),
    maxSeries: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .optional()
      .describe('Most attribute sets of one metric (2000); the rest go to an otel.metric.overflow series'),
    tls: tlsOptions
      .optional()
      .describe(
        'TLS for an https:// endpoint: caFile, certFile/keyFile (mTLS), insecureSkipVerify, serverName. Default: OTEL_EXPORTER_OTLP_CERTIFICATE, _CLIENT_CERTIFICATE and _CLIENT_KEY',
      ),
  })
  .describe(
    'OpenTelemetry: push metrics over OTLP/HTTP (exponential histograms, cumulative) to a collector or backend',
  );

export type RawOtlpConfig = z.output<typeof otlpConfigSchema>;

/**
 * `key1=value1,key2=value2` with percent-encoded values, the form of OTEL_EXPORTER_OTLP_HEADERS and
 * OTEL_RESOURCE_ATTRIBUTES. Returns the pairs, or a problem.
 */
export function parseKeyValueList(text: string): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const item of text.split(',')) {
    if (item.trim() === '') continue;
    const eq = item.indexOf('=');
    const key = item.slice(0, eq).trim();
    if (eq < 0 || key === '')
      return `expected key=value pairs separated by commas (got ${JSON.stringify(item)})`;
    try {
      out[key] = decodeURIComponent(item.slice(eq + 1).trim());
    } catch {
      return `the value of ${key} is not valid percent-encoding`;
    }
  }
  return out;
}

/** OTEL_EXPORTER_OTLP_ENDPOINT's rule: the base URL with v1/metrics appended to its path. */
export function metricsUrlFromBase(base: string): string {
  const u = new URL(base);
  u.pathname = `${stripTrailing(u.pathname, '/')}/v1/metrics`;
  return u.toString();
}

type Env = Record<string, string | undefined>;

/**
 * Resolves the `otlp:` section. What the file says wins; the standard variables fill what it leaves out
 * (the signal-specific OTEL_EXPORTER_OTLP_METRICS_* before OTEL_EXPORTER_OTLP_*). Problems are reported
 * through `problem` (a config path) and `envProblem` (a variable), never thrown.
 */
export function resolveOtlpConfig(
  raw: RawOtlpConfig,
  env: Env,
  problem: (path: (string | number)[], message: string) => void,
  envProblem: (message: string) => void,
): OtlpConfig {
  const envVar = (...names: string[]): [string, string] | undefined => {
    for (const name of names) {
      const v = env[name]?.trim();
      if (v) return [name, v];
    }
    return undefined;
  };
  const bad = (name: string, message: string) => envProblem(`environment variable ${name}: ${message}`);
  const envMs = (...names: string[]): number | undefined => {
    const found = envVar(...names);
    if (!found) return undefined;
    const ms = Number(found[1]);
    if (!Number.isInteger(ms) || ms <= 0) {
      bad(found[0], `expected a whole number of milliseconds, like 10000 (got ${JSON.stringify(found[1])})`);
      return undefined;
    }
    return ms;
  };
  const envUrl = (name: string, value: string): string | undefined => {
    const ok = httpUrl.safeParse(value);
    if (!ok.success) bad(name, `expected an http:// or https:// URL (got ${JSON.stringify(value)})`);
    return ok.success ? ok.data : undefined;
  };

  let url =
    raw.metricsEndpoint ?? (raw.endpoint !== undefined ? metricsUrlFromBase(raw.endpoint) : undefined);
  if (url === undefined) {
    const signal = envVar('OTEL_EXPORTER_OTLP_METRICS_ENDPOINT');
    const base = envVar('OTEL_EXPORTER_OTLP_ENDPOINT');
    if (signal) url = envUrl(...signal);
    else if (base) {
      const b = envUrl(...base);
      if (b) url = metricsUrlFromBase(b);
    } else
      problem(
        ['otlp'],
        'no collector to send to: set otlp.endpoint (e.g. http://127.0.0.1:4318) or OTEL_EXPORTER_OTLP_ENDPOINT',
      );
  }

  let protocol: OtlpProtocol = raw.protocol ?? 'http/protobuf';
  if (raw.protocol === undefined) {
    const p = envVar('OTEL_EXPORTER_OTLP_METRICS_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL');
    if (p) {
      const why = protocolProblem(p[1]);
      if (why) bad(p[0], why);
      else protocol = p[1] as OtlpProtocol;
    }
  }

  let compression: OtlpCompression = raw.compression ?? 'none';
  if (raw.compression === undefined) {
    const c = envVar('OTEL_EXPORTER_OTLP_METRICS_COMPRESSION', 'OTEL_EXPORTER_OTLP_COMPRESSION');
    if (c && c[1] !== 'gzip' && c[1] !== 'none')
      bad(c[0], `expected gzip or none (got ${JSON.stringify(c[1])})`);
    else if (c) compression = c[1] as OtlpCompression;
  }

  // Header names are case-insensitive: a later source replaces an earlier one's header whatever its case.
  const headers = new Map<string, [string, string]>();
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_METRICS_HEADERS']) {
    const text = env[name];
    if (!text?.trim()) continue;
    const pairs = parseKeyValueList(text);
    if (typeof pairs === 'string') {
      bad(name, pairs);
      continue;
    }
    for (const [k, v] of Object.entries(pairs)) {
      if (!HEADER_NAME.test(k) || !HEADER_VALUE.test(v))
        bad(name, `${JSON.stringify(k)} is not a valid header`);
      else headers.set(k.toLowerCase(), [k, v]);
    }
  }
  for (const [k, v] of Object.entries(raw.headers ?? {})) headers.set(k.toLowerCase(), [k, v]);

  const resource: Record<string, string> = {};
  const attrs = env.OTEL_RESOURCE_ATTRIBUTES;
  if (attrs?.trim()) {
    const pairs = parseKeyValueList(attrs);
    if (typeof pairs === 'string') bad('OTEL_RESOURCE_ATTRIBUTES', pairs);
    else Object.assign(resource, pairs);
  }
  const serviceName = env.OTEL_SERVICE_NAME?.trim();
  if (serviceName) resource['service.name'] = serviceName;
  Object.assign(resource, raw.resource ?? {});

  const intervalMs = raw.interval ?? envMs('OTEL_METRIC_EXPORT_INTERVAL') ?? DEFAULT_OTLP_INTERVAL_MS;
  if (intervalMs < INTERVAL_RANGE.min || intervalMs > INTERVAL_RANGE.max)
    problem(['otlp', 'interval'], `must be ${describeRange(INTERVAL_RANGE)} (got ${intervalMs} ms)`);
  let timeoutMs = raw.timeout ?? envMs('OTEL_EXPORTER_OTLP_METRICS_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT');
  if (timeoutMs === undefined) timeoutMs = Math.min(DEFAULT_OTLP_TIMEOUT_MS, Math.floor(intervalMs * 0.9));
  else if (timeoutMs < DURATION_RANGES.timeout.min || timeoutMs > DURATION_RANGES.timeout.max)
    problem(['otlp', 'timeout'], `must be ${describeRange(DURATION_RANGES.timeout)} (got ${timeoutMs} ms)`);
  else if (timeoutMs >= intervalMs)
    problem(
      ['otlp', 'timeout'],
      `must be below the interval (${intervalMs} ms), so one export ends before the next begins`,
    );

  // TLS files: the file's settings, else the standard variables (signal-specific first).
  const tlsFile = (
    key: 'caFile' | 'certFile' | 'keyFile',
    suffix: string,
  ): { path: (string | number)[] | string; file: string } | undefined => {
    const inFile = raw.tls?.[key];
    if (inFile !== undefined) return { path: ['otlp', 'tls', key], file: inFile };
    const found = envVar(`OTEL_EXPORTER_OTLP_METRICS_${suffix}`, `OTEL_EXPORTER_OTLP_${suffix}`);
    return found && { path: found[0], file: found[1] };
  };
  const read = (f: ReturnType<typeof tlsFile>): Buffer | undefined => {
    if (!f) return undefined;
    try {
      return readFileSync(f.file);
    } catch (err) {
      const why = `cannot read ${f.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      if (typeof f.path === 'string') bad(f.path, why);
      else problem(f.path, why);
      return undefined;
    }
  };
  const caFile = tlsFile('caFile', 'CERTIFICATE');
  const certFile = tlsFile('certFile', 'CLIENT_CERTIFICATE');
  const keyFile = tlsFile('keyFile', 'CLIENT_KEY');
  if ((certFile === undefined) !== (keyFile === undefined))
    problem(
      ['otlp', 'tls'],
      'a client certificate needs both its certificate and its key (certFile and keyFile, or OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY)',
    );
  if (raw.tls && url?.startsWith('http:'))
    problem(['otlp', 'tls'], `TLS settings need an https:// endpoint (got ${url})`);
  let tls: OtlpTls | undefined;
  if (raw.tls || caFile || certFile || keyFile) {
    const [ca, cert, key] = [read(caFile), read(certFile), read(keyFile)];
    tls = {
      ...(ca && { ca }),
      ...(cert && { cert }),
      ...(key && { key }),
      rejectUnauthorized: raw.tls?.insecureSkipVerify !== true,
      ...(raw.tls?.serverName !== undefined && { servername: raw.tls.serverName }),
    };
  }

  return {
    ...(tls && { tls }),
    url: url ?? '',
    protocol,
    headers: Object.fromEntries(headers.values()),
    intervalMs,
    timeoutMs,
    compression,
    resource,
    maxBuckets: raw.maxBuckets ?? DEFAULT_MAX_BUCKETS,
    maxSeries: raw.maxSeries ?? DEFAULT_MAX_SERIES,
  };
}
