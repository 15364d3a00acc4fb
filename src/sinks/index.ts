import type { Registry } from 'prom-client';
import type { AgentConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { OtlpSink } from './otlp/sink.js';
import { PrometheusSink } from './prometheus/sink.js';
import type { ObservationSink } from './sink.js';

export { teeSinks, type ObservationSink } from './sink.js';

/** The sinks a config asks for: /metrics always (in `registry`), and OTLP with an otlp section. */
export function createSinks(
  config: AgentConfig,
  deps: { registry: Registry; clock: Clock; version: string; log?: Logger | undefined },
): ObservationSink[] {
  const sinks: ObservationSink[] = [new PrometheusSink(deps.registry, config.metrics)];
  if (config.otlp)
    sinks.push(
      new OtlpSink(config.otlp, {
        registry: deps.registry,
        clock: deps.clock,
        version: deps.version,
        ...(deps.log && { log: deps.log.child({ component: 'otlp' }) }),
      }),
    );
  return sinks;
}
