import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';
import { until } from './async.js';

/**
 * An OTLP/HTTP metrics receiver for tests: a plain node:http server on loopback that decodes what it is
 * sent (protobuf with the definitions below, JSON as it comes) into one shape, answers as told (ok,
 * an error status, a partial success, or never), and keeps every export for assertions.
 */

/**
 * The messages of OTLP metrics we need, with the field numbers of opentelemetry-proto (v1.x):
 * collector/metrics/v1, metrics/v1, common/v1 and resource/v1, written out for the test (not generated
 * from our encoder), so a wrong field number in the encoder shows up as a missing value.
 */
const OTLP_METRICS_PROTO = `
syntax = "proto3";
package otlp;

message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }
message ExportMetricsServiceResponse { ExportMetricsPartialSuccess partial_success = 1; }
message ExportMetricsPartialSuccess { int64 rejected_data_points = 1; string error_message = 2; }
message Status { int32 code = 1; string message = 2; }

message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
  }
}
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }

message ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; string schema_url = 3; }
message ScopeMetrics { InstrumentationScope scope = 1; repeated Metric metrics = 2; string schema_url = 3; }
message Metric {
  string name = 1;
  string description = 2;
  string unit = 3;
  oneof data {
    Gauge gauge = 5;
    Sum sum = 7;
    Histogram histogram = 9;
    ExponentialHistogram exponential_histogram = 10;
  }
}
message Gauge { repeated NumberDataPoint data_points = 1; }
message Sum { repeated NumberDataPoint data_points = 1; int32 aggregation_temporality = 2; bool is_monotonic = 3; }
message Histogram { int32 aggregation_temporality = 2; }
message ExponentialHistogram {
  repeated ExponentialHistogramDataPoint data_points = 1;
  int32 aggregation_temporality = 2;
}
message NumberDataPoint {
  repeated KeyValue attributes = 7;
  fixed64 start_time_unix_nano = 2;
  fixed64 time_unix_nano = 3;
  oneof value {
    double as_double = 4;
    sfixed64 as_int = 6;
  }
  uint32 flags = 8;
}
message ExponentialHistogramDataPoint {
  repeated KeyValue attributes = 1;
  fixed64 start_time_unix_nano = 2;
  fixed64 time_unix_nano = 3;
  fixed64 count = 4;
  optional double sum = 5;
  sint32 scale = 6;
  fixed64 zero_count = 7;
  Buckets positive = 8;
  Buckets negative = 9;
  uint32 flags = 10;
  optional double min = 12;
  optional double max = 13;
  double zero_threshold = 14;
  message Buckets {
    sint32 offset = 1;
    repeated uint64 bucket_counts = 2;
  }
}
`;

const root = protobuf.parse(OTLP_METRICS_PROTO, { keepCase: false }).root;
const RequestType = root.lookupType('otlp.ExportMetricsServiceRequest');
const ResponseType = root.lookupType('otlp.ExportMetricsServiceResponse');
const StatusType = root.lookupType('otlp.Status');

export type ReceivedValue = string | boolean | number;

export interface ReceivedPoint {
  attributes: Record<string, ReceivedValue>;
  startTimeNs: bigint;
  timeNs: bigint;
  /** Gauges and sums. */
  value?: number;
  asInt?: boolean;
  /** Exponential histograms. */
  count?: number;
  sum?: number;
  min?: number;
  max?: number;
  scale?: number;
  zeroCount?: number;
  offset?: number;
  bucketCounts?: number[];
  negativeBuckets?: number;
}

export interface ReceivedMetric {
  name: string;
  description: string;
  unit: string;
  type: 'gauge' | 'sum' | 'histogram' | 'exponentialHistogram' | 'none';
  temporality?: number;
  monotonic?: boolean;
  points: ReceivedPoint[];
}

export interface ReceivedExport {
  path: string;
  headers: IncomingHttpHeaders;
  protocol: 'protobuf' | 'json';
  gzip: boolean;
  resource: Record<string, ReceivedValue>;
  scope: { name: string; version: string };
  metrics: ReceivedMetric[];
}

type Obj = Record<string, unknown>;

const num = (v: unknown): number => (v === undefined || v === null ? 0 : Number(v));
const big = (v: unknown): bigint => (v === undefined || v === null ? 0n : BigInt(v as string | number));

function attrs(list: unknown): Record<string, ReceivedValue> {
  const out: Record<string, ReceivedValue> = {};
  for (const kv of (list as Obj[] | undefined) ?? []) {
    const v = (kv.value ?? {}) as Obj;
    out[kv.key as string] =
      'stringValue' in v
        ? (v.stringValue as string)
        : 'boolValue' in v
          ? (v.boolValue as boolean)
          : 'intValue' in v
            ? num(v.intValue)
            : num(v.doubleValue);
  }
  return out;
}

function point(p: Obj): ReceivedPoint {
  const out: ReceivedPoint = {
    attributes: attrs(p.attributes),
    startTimeNs: big(p.startTimeUnixNano),
    timeNs: big(p.timeUnixNano),
  };
  if ('asDouble' in p) out.value = num(p.asDouble);
  if ('asInt' in p) {
    out.value = num(p.asInt);
    out.asInt = true;
  }
  if ('count' in p || 'positive' in p || 'scale' in p) {
    const positive = (p.positive ?? {}) as Obj;
    out.count = num(p.count);
    out.sum = num(p.sum);
    if ('min' in p) out.min = num(p.min);
    if ('max' in p) out.max = num(p.max);
    out.scale = num(p.scale);
    out.zeroCount = num(p.zeroCount);
    out.offset = num(positive.offset);
    out.bucketCounts = ((positive.bucketCounts as unknown[] | undefined) ?? []).map(num);
    out.negativeBuckets = (
      ((p.negative as Obj | undefined)?.bucketCounts as unknown[] | undefined) ?? []
    ).length;
  }
  return out;
}

function metric(m: Obj): ReceivedMetric {
  const base = {
    name: m.name as string,
    description: (m.description as string) ?? '',
    unit: (m.unit as string) ?? '',
  };
  for (const type of ['gauge', 'sum', 'histogram', 'exponentialHistogram'] as const) {
    const data = m[type] as Obj | undefined;
    if (!data) continue;
    return {
      ...base,
      type,
      ...('aggregationTemporality' in data ? { temporality: num(data.aggregationTemporality) } : {}),
      ...(type === 'sum' ? { monotonic: data.isMonotonic === true } : {}),
      points: ((data.dataPoints as Obj[] | undefined) ?? []).map(point),
    };
  }
  return { ...base, type: 'none', points: [] };
}

/** Both encodings to one shape; throws on anything that is not an ExportMetricsServiceRequest. */
export function decodeRequest(
  body: Buffer,
  protocol: 'protobuf' | 'json',
): Omit<ReceivedExport, 'path' | 'headers' | 'protocol' | 'gzip'> {
  const obj: Obj =
    protocol === 'json'
      ? (JSON.parse(body.toString('utf8')) as Obj)
      : (RequestType.toObject(RequestType.decode(body), {
          longs: String,
          defaults: false,
          arrays: true,
        }) as Obj);
  const rms = (obj.resourceMetrics as Obj[] | undefined) ?? [];
  if (rms.length !== 1) throw new Error(`expected one ResourceMetrics, got ${rms.length}`);
  const rm = rms[0]!;
  const sms = (rm.scopeMetrics as Obj[] | undefined) ?? [];
  if (sms.length !== 1) throw new Error(`expected one ScopeMetrics, got ${sms.length}`);
  const sm = sms[0]!;
  const scope = (sm.scope ?? {}) as Obj;
  return {
    resource: attrs((rm.resource as Obj | undefined)?.attributes),
    scope: { name: (scope.name as string) ?? '', version: (scope.version as string) ?? '' },
    metrics: ((sm.metrics as Obj[] | undefined) ?? []).map(metric),
  };
}

/** How the receiver answers the next exports. */
export type Behaviour =
  | { type: 'ok'; rejected?: { points: number; message: string } }
  | { type: 'status'; status: number; message?: string; retryAfter?: string }
  | { type: 'hang' };

export interface OtlpReceiver {
  /** Base URL, e.g. http://127.0.0.1:PORT (the exporter appends /v1/metrics). */
  url: string;
  exports: ReceivedExport[];
  /** Every request that arrived, answered or not, decodable or not. */
  requests: number;
  /** Bodies that did not decode, with why. */
  errors: string[];
  behave(b: Behaviour): void;
  /** Waits until an export satisfies `pred`; returns it. */
  waitFor(what: string, pred: (e: ReceivedExport) => boolean, timeoutMs?: number): Promise<ReceivedExport>;
  close(): Promise<void>;
}

export interface OtlpReceiverOptions {
  /** Serve HTTPS with this certificate; with `clientCa`, demand a client certificate it signed. */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
}

export async function startOtlpReceiver(opts: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  let behaviour: Behaviour = { type: 'ok' };
  const exports: ReceivedExport[] = [];
  const errors: string[] = [];
  let requests = 0;

  const answer = (res: ServerResponse, protocol: 'protobuf' | 'json') => {
    const b = behaviour;
    if (b.type === 'hang') return;
    const type = protocol === 'json' ? 'application/json' : 'application/x-protobuf';
    if (b.type === 'status') {
      const status = { code: 14, message: b.message ?? `status ${b.status}` };
      res.writeHead(b.status, {
        'content-type': type,
        ...(b.retryAfter !== undefined ? { 'retry-after': b.retryAfter } : {}),
      });
      res.end(protocol === 'json' ? JSON.stringify(status) : StatusType.encode(status).finish());
      return;
    }
    const response = b.rejected
      ? { partialSuccess: { rejectedDataPoints: b.rejected.points, errorMessage: b.rejected.message } }
      : {};
    res.writeHead(200, { 'content-type': type });
    res.end(
      protocol === 'json'
        ? JSON.stringify(response)
        : ResponseType.encode(ResponseType.fromObject(response)).finish(),
    );
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    requests++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const type = req.headers['content-type'] ?? '';
      const protocol = type.startsWith('application/json') ? 'json' : 'protobuf';
      const gzip = req.headers['content-encoding'] === 'gzip';
      try {
        const raw = Buffer.concat(chunks);
        const body = gzip ? gunzipSync(raw) : raw;
        if (protocol === 'protobuf' && type !== 'application/x-protobuf')
          throw new Error(`unexpected content-type ${type}`);
        exports.push({
          path: req.url ?? '',
          headers: req.headers,
          protocol,
          gzip,
          ...decodeRequest(body, protocol),
        });
      } catch (err) {
        errors.push((err as Error).message);
        res.writeHead(400).end();
        return;
      }
      answer(res, protocol);
    });
  };
  const tls = opts.tls;
  const server = tls
    ? createHttpsServer(
        {
          cert: tls.cert,
          key: tls.key,
          ...(tls.clientCa && { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }),
        },
        handle,
      )
    : createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    exports,
    errors,
    get requests() {
      return requests;
    },
    behave: (b) => (behaviour = b),
    async waitFor(what, pred, timeoutMs = 10_000) {
      let found: ReceivedExport | undefined;
      await until(() => (found = exports.find(pred)) !== undefined, what, timeoutMs);
      return found!;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The one metric named `name` in an export; throws naming what it has otherwise. */
export function metricOf(e: ReceivedExport, name: string): ReceivedMetric {
  const m = e.metrics.find((x) => x.name === name);
  if (!m) throw new Error(`no metric ${name} in the export (has ${e.metrics.map((x) => x.name).join(', ')})`);
  return m;
}

/** The points of `name` whose attributes include `match`. */
export function pointsOf(
  e: ReceivedExport,
  name: string,
  match: Record<string, ReceivedValue> = {},
): ReceivedPoint[] {
  return metricOf(e, name).points.filter((p) =>
    Object.entries(match).every(([k, v]) => p.attributes[k] === v),
  );
}
