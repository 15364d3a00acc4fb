import { Counter, Gauge, type Registry } from 'prom-client';

/** What the agent's HTTP server reports about its connections (see api/connection-limits.ts). */
export interface HttpConnectionCounts {
  open: number;
  max: number;
  refused: Record<'max_connections' | 'max_per_client', number>;
  idleClosed: number;
  /** Check requests refused because the check-now budget was spent. */
  checksRefused: number;
}

const NAMES = [
  'coalmine_http_connections',
  'coalmine_http_connections_max',
  'coalmine_http_connections_refused_total',
  'coalmine_http_connections_idle_closed_total',
  'coalmine_http_checks_refused_total',
] as const;

/**
 * The HTTP server's connection gauges and counters, read from `counts` at each scrape. Registering again
 * on the same registry (a restarted server) replaces the previous server's.
 */
export function registerHttpMetrics(registry: Registry, counts: () => HttpConnectionCounts): void {
  for (const name of NAMES) registry.removeSingleMetric(name);
  const registers = [registry];
  new Gauge({
    name: 'coalmine_http_connections',
    help: 'HTTP connections open to the agent now',
    registers,
    collect() {
      this.set(counts().open);
    },
  });
  new Gauge({
    name: 'coalmine_http_connections_max',
    help: 'Most HTTP connections the agent keeps open: the configured cap, or half the open-file limit when that is lower',
    registers,
    collect() {
      this.set(counts().max);
    },
  });
  new Counter({
    name: 'coalmine_http_connections_refused_total',
    help: 'HTTP connections closed on arrival: too many open (max_connections) or from one client (max_per_client)',
    labelNames: ['reason'],
    registers,
    collect() {
      const c = counts().refused;
      this.reset();
      this.inc({ reason: 'max_connections' }, c.max_connections);
      this.inc({ reason: 'max_per_client' }, c.max_per_client);
    },
  });
  new Counter({
    name: 'coalmine_http_connections_idle_closed_total',
    help: 'HTTP connections closed because nothing moved on them for the idle timeout',
    registers,
    collect() {
      this.reset();
      this.inc(counts().idleClosed);
    },
  });
  new Counter({
    name: 'coalmine_http_checks_refused_total',
    help: 'Check-now requests (POST /check, POST /api/v1/check) refused with 429: the check-now budget was spent',
    registers,
    collect() {
      this.reset();
      this.inc(counts().checksRefused);
    },
  });
}
