import type { Observation } from '../core/types.js';
import { teeMessagingSinks, type MessagingSink } from '../messaging/observer.js';

/**
 * Where the agent's measurements go: each finished probe run, and the observers the messaging runtime
 * feeds for each canary and coalminer. The Prometheus exposition and the OTLP export are two; the agent
 * knows only this interface (src/sinks/index.ts makes the ones a config asks for).
 */
export interface ObservationSink {
  /** A probe run finished (scheduled or on demand). Must not throw. */
  observeProbe(o: Observation): void;
  /** The messaging runtime's observers for this sink. */
  readonly messaging: MessagingSink;
  /** Starts what the sink runs on its own (an export timer). */
  start?(): void;
  /** Hands over what is still held (a last export) and stops. Never rejects. */
  close?(): Promise<void>;
}

/** Several sinks fed as one, in order. */
export function teeSinks(sinks: readonly ObservationSink[]): Required<ObservationSink> {
  const [first, ...rest] = sinks;
  if (first === undefined) throw new Error('teeSinks: no sinks');
  return {
    observeProbe: (o) => {
      for (const s of sinks) s.observeProbe(o);
    },
    messaging: rest.reduce((m, s) => teeMessagingSinks(m, s.messaging), first.messaging),
    start: () => {
      for (const s of sinks) s.start?.();
    },
    close: async () => {
      await Promise.all(sinks.map((s) => s.close?.()));
    },
  };
}
