import {
  AGGREGATION_TEMPORALITY_CUMULATIVE,
  type Attributes,
  type ExportResponse,
  type HistogramPoint,
  type MetricData,
  type MetricsExport,
  type NumberPoint,
} from './model.js';

/**
 * OTLP/JSON: the protobuf messages in proto3's JSON mapping, as OTLP/HTTP specifies it: lowerCamelCase
 * keys, enums as numbers, 64-bit integers as decimal strings.
 */

type Json = Record<string, unknown>;

function attributes(attrs: Attributes): Json[] {
  return attrs.map(([key, value]) => ({
    key,
    value: typeof value === 'string' ? { stringValue: value } : { boolValue: value },
  }));
}

function numberPoint(p: NumberPoint, integer: boolean): Json {
  return {
    attributes: attributes(p.attributes),
    ...(p.startTimeNs !== undefined ? { startTimeUnixNano: String(p.startTimeNs) } : {}),
    timeUnixNano: String(p.timeNs),
    ...(integer ? { asInt: String(p.value) } : { asDouble: p.value }),
  };
}

function histogramPoint(p: HistogramPoint): Json {
  const h = p.histogram;
  return {
    attributes: attributes(p.attributes),
    startTimeUnixNano: String(p.startTimeNs),
    timeUnixNano: String(p.timeNs),
    count: String(h.count),
    sum: h.sum,
    scale: h.scale,
    zeroCount: String(h.zeroCount),
    positive: { offset: h.positive.offset, bucketCounts: h.positive.bucketCounts.map(String) },
    ...(h.min !== undefined ? { min: h.min } : {}),
    ...(h.max !== undefined ? { max: h.max } : {}),
  };
}

function metric(m: MetricData): Json {
  const head = { name: m.name, description: m.description, unit: m.unit };
  switch (m.type) {
    case 'gauge':
      return { ...head, gauge: { dataPoints: m.points.map((p) => numberPoint(p, m.integer)) } };
    case 'sum':
      return {
        ...head,
        sum: {
          dataPoints: m.points.map((p) => numberPoint(p, m.integer)),
          aggregationTemporality: AGGREGATION_TEMPORALITY_CUMULATIVE,
          isMonotonic: m.monotonic,
        },
      };
    case 'exponentialHistogram':
      return {
        ...head,
        exponentialHistogram: {
          dataPoints: m.points.map(histogramPoint),
          aggregationTemporality: AGGREGATION_TEMPORALITY_CUMULATIVE,
        },
      };
  }
}

export function encodeJson(e: MetricsExport): string {
  return JSON.stringify({
    resourceMetrics: [
      {
        resource: { attributes: attributes(e.resource) },
        scopeMetrics: [{ scope: e.scope, metrics: e.metrics.map(metric) }],
      },
    ],
  });
}

/** ExportMetricsServiceResponse in JSON; an empty or unreadable body is a plain success. */
export function decodeJsonResponse(text: string): ExportResponse {
  const out: ExportResponse = { rejectedDataPoints: 0, errorMessage: '' };
  if (text.trim() === '') return out;
  try {
    const partial = (JSON.parse(text) as { partialSuccess?: Record<string, unknown> }).partialSuccess;
    if (partial) {
      out.rejectedDataPoints = Number(partial.rejectedDataPoints ?? 0) || 0;
      out.errorMessage = typeof partial.errorMessage === 'string' ? partial.errorMessage : '';
    }
  } catch {
    // Not JSON: the status already said it was accepted.
  }
  return out;
}

/** The `message` of a google.rpc.Status in JSON, if the body is one. */
export function decodeJsonStatusMessage(text: string): string | undefined {
  try {
    const m = (JSON.parse(text) as { message?: unknown }).message;
    return typeof m === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}
