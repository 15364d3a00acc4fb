import type { Registry } from 'prom-client';
import type { AgentConfig } from '../../config/schema.js';
import type { Observation } from '../../core/types.js';
import type { ObservationSink } from '../sink.js';
import { MessagingMetrics } from './messaging-metrics.js';
import { ProbeMetrics } from './probe-metrics.js';

/** The agent's /metrics: probe and message figures in one prom-client registry. */
export class PrometheusSink implements ObservationSink {
  readonly messaging: MessagingMetrics;
  private readonly probes: ProbeMetrics;

  constructor(registry: Registry, config: AgentConfig['metrics']) {
    this.probes = new ProbeMetrics(registry, config);
    this.messaging = new MessagingMetrics(registry, config.buckets);
  }

  observeProbe(o: Observation): void {
    this.probes.observe(o);
  }
}
