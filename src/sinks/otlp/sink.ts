import type { Logger } from '../../core/log.js';
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import type { Clock } from '../../core/clock.js';
import type { Observation } from '../../core/types.js';
import type { MessagingSink } from '../../messaging/observer.js';
import type { ObservationSink } from '../sink.js';
import type { OtlpConfig } from './config.js';
import { OtlpExporter, type ExportOutcome } from './exporter.js';
import { OtlpMetrics } from './metrics.js';
import type { Attributes } from './model.js';

export interface OtlpSinkOptions {
  registry: Registry;
  clock: Clock;
  /** The agent's version: service.version and the instrumentation scope's version. */
  version: string;
  log?: Logger;
  /** Default os.hostname(). */
  hostName?: string;
}

/**
 * The agent's OTLP export: measurements go in through `observeProbe` and the `messaging` observers, and
 * out every interval to the configured endpoint, as one resource (service.name=coalmine unless
 * configured, service.version, host.name, service.instance.id) with one instrumentation scope.
 */
export class OtlpSink implements ObservationSink {
  readonly messaging: MessagingSink;
  readonly resource: Attributes;
  private readonly metrics: OtlpMetrics;
  private readonly exporter: OtlpExporter;

  constructor(config: OtlpConfig, opts: OtlpSinkOptions) {
    const host = opts.hostName ?? hostname();
    this.resource = Object.entries({
      'service.name': 'coalmine',
      'service.version': opts.version,
      'host.name': host,
      // Backends that key series by job and instance (Prometheus-style) need agents told apart.
      'service.instance.id': host,
      ...config.resource,
    });
    this.metrics = new OtlpMetrics({
      maxBuckets: config.maxBuckets,
      maxSeries: config.maxSeries,
      nowNs: () => BigInt(Math.round(opts.clock.wallMs())) * 1_000_000n,
      onOverflow: (metric) =>
        opts.log?.warn(
          `otlp: ${metric} has more than ${config.maxSeries} attribute sets; the rest go to one series with otel.metric.overflow=true (raise otlp.maxSeries)`,
        ),
    });
    this.messaging = this.metrics;
    const scope = { name: 'coalmine', version: opts.version };
    this.exporter = new OtlpExporter(config, {
      registry: opts.registry,
      collect: () => ({ resource: this.resource, scope, metrics: this.metrics.collect() }),
      userAgent: `coalmine/${opts.version}`,
      nowMs: () => opts.clock.wallMs(),
      ...(opts.log ? { log: opts.log } : {}),
    });
  }

  observeProbe(o: Observation): void {
    this.metrics.observeProbe(o);
  }

  start(): void {
    this.exporter.start();
  }

  /** Exports now; for tests and for `close`. Never rejects. */
  flush(): Promise<ExportOutcome> {
    return this.exporter.exportNow();
  }

  /** Exports once more (bounded by the timeout) and closes the connection. Idempotent. */
  close(): Promise<void> {
    return this.exporter.close();
  }
}
