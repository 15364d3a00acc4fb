import { Counter, Gauge, type Registry } from 'prom-client';
import type { WriterStats } from '../../store/writer.js';

const NAMES = [
  'coalmine_store_written_total',
  'coalmine_store_dropped_total',
  'coalmine_store_write_errors_total',
  'coalmine_store_queued',
  'coalmine_store_up',
  'coalmine_store_last_error_timestamp_seconds',
  'coalmine_store_overview_dropped_total',
] as const;

/**
 * The results store's batched writer, read at each scrape: what it wrote, dropped and failed to write,
 * what waits, and whether writes succeed now; and, given `overviewDropped`, the runs the targets
 * overview's in-memory tail dropped. Registering again on one registry replaces the previous.
 */
export function registerStoreMetrics(
  registry: Registry,
  stats: () => WriterStats,
  overviewDropped?: () => number,
): void {
  for (const name of NAMES) registry.removeSingleMetric(name);
  const registers = [registry];
  const counter = (name: string, help: string, value: (s: WriterStats) => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(value(stats()));
      },
    });
  const gauge = (name: string, help: string, value: (s: WriterStats) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(value(stats()));
      },
    });
  counter('coalmine_store_written_total', 'Results written to the store', (s) => s.written);
  counter(
    'coalmine_store_dropped_total',
    'Results never written: the writer queue was full while the store failed or was slow, or the agent stopped first',
    (s) => s.dropped,
  );
  counter(
    'coalmine_store_write_errors_total',
    'Store writes that failed (each retry of a batch counts)',
    (s) => s.writeErrors,
  );
  gauge('coalmine_store_queued', 'Results waiting to be written to the store', (s) => s.queued);
  gauge(
    'coalmine_store_up',
    'Whether store writes succeed: 0 from a failed write until a write succeeds again',
    (s) => (s.lastError === undefined ? 1 : 0),
  );
  if (overviewDropped)
    new Counter({
      name: 'coalmine_store_overview_dropped_total',
      help: "Runs written that the targets overview's in-memory tail could not keep (it fills when rollups stop finishing); /api/v1/targets misses them until a rollup holds them",
      registers,
      collect() {
        this.reset();
        this.inc(overviewDropped());
      },
    });
  gauge(
    'coalmine_store_last_error_timestamp_seconds',
    'When a store write last failed (Unix time), recovered or not; 0 if none has',
    (s) => (s.lastErrorAt ?? 0) / 1000,
  );
}
