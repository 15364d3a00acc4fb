import { probes } from './registry.js';

/**
 * What each probe value means (`ProbeResult.values`), named as blackbox_exporter names its `probe_*`
 * gauges: every kind's ProbeDefinition.values in one table; the Prometheus and OTLP sinks both describe
 * the values with it. A name two kinds share has one meaning (src/probes/shared-values.ts).
 */
export const VALUE_HELP: Readonly<Record<string, string>> = Object.assign(
  {},
  ...Object.values(probes).map((p) => p.values),
) as Record<string, string>;
