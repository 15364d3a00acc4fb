import type { ExponentialHistogramSnapshot } from './exponential-histogram.js';

/** The part of the OTLP metrics data model we send: what both encoders (protobuf and JSON) take. */

export type AttributeValue = string | boolean;
/** Attribute pairs in a fixed order; keys are unique. */
export type Attributes = readonly (readonly [string, AttributeValue])[];

export interface HistogramPoint {
  attributes: Attributes;
  startTimeNs: bigint;
  timeNs: bigint;
  histogram: ExponentialHistogramSnapshot;
}

export interface NumberPoint {
  attributes: Attributes;
  /** Set for sums (start of the cumulative interval); gauges have none. */
  startTimeNs?: bigint;
  timeNs: bigint;
  value: number;
}

interface MetricBase {
  name: string;
  description: string;
  /** UCUM unit: `s`, `1`, `{message}`. */
  unit: string;
}

/** Every sum and histogram we send is cumulative: a lost export loses nothing, the next one has it all. */
export type MetricData =
  | (MetricBase & { type: 'exponentialHistogram'; points: HistogramPoint[] })
  | (MetricBase & { type: 'sum'; monotonic: boolean; integer: boolean; points: NumberPoint[] })
  | (MetricBase & { type: 'gauge'; integer: boolean; points: NumberPoint[] });

export interface MetricsExport {
  resource: Attributes;
  scope: { name: string; version: string };
  metrics: MetricData[];
}

/** What a collector said back to a successful export (OTLP partial success). */
export interface ExportResponse {
  rejectedDataPoints: number;
  errorMessage: string;
}

export const AGGREGATION_TEMPORALITY_CUMULATIVE = 2;
