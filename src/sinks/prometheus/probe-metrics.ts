import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { nsToSeconds } from '../../core/clock.js';
import type { Observation } from '../../core/types.js';
import { LATENCY404_BUCKETS } from '../../config/schema.js';
import { VALUE_HELP } from '../../probes/value-help.js';

/** Seed 001 (latency404) metric prefix for each probe kind. */
const LATENCY404_PREFIX: Record<string, string> = { http: 'http', tcp: 'tcp', icmp: 'ping', dns: 'dns' };

/** A gauge's value from one run, kept in place: `run` says which run last set it. */
interface Slot {
  value: number;
  run: number;
}

/**
 * One target's last exported values and its histogram and counter children. The gauges read these
 * fields when /metrics is scraped (each gauge's `collect`), so a probe run only overwrites numbers:
 * prom-client's own `Gauge.set` makes a new entry object and a label-hash string on every call, and
 * since each entry lives until the next run replaces it, all of them were promoted and left as old-
 * generation garbage (a third of what a 200-target agent promoted; bench/probes.mjs, memory).
 */
interface TargetSeries {
  target: string;
  kind: string;
  /** Counts the target's runs; a value slot whose `run` is older was not set by the last run. */
  run: number;
  success: number;
  duration: number;
  histogram: { observe(value: number): void };
  network: { observe(value: number): void };
  totals: Map<string, { inc(): void }>;
  phases: Map<string, Slot>;
  values: Map<string, Slot>;
}

export interface ProbeMetricsOptions {
  buckets: number[];
  compat: readonly string[];
}

/**
 * Turns probe observations into Prometheus metrics on one registry: blackbox_exporter's names, our own
 * histograms and counters, and optionally seed 001's names. Probes never see this. Durations under
 * blackbox's and seed 001's names are wall time, as there; the kernel-timed network time is only under
 * ours (`coalmine_probe_network_seconds`).
 */
export class ProbeMetrics {
  private readonly success: Gauge<'target' | 'kind'>;
  private readonly duration: Gauge<'target' | 'kind'>;
  private readonly phaseGauges = new Map<string, Gauge<'target' | 'phase'>>();
  private readonly valueGauges = new Map<string, Gauge<'target'>>();
  private readonly targets = new Map<string, TargetSeries>();
  private readonly histogram: Histogram<'kind' | 'target'>;
  private readonly network: Histogram<'kind' | 'target'>;
  private readonly total: Counter<'kind' | 'target' | 'result'>;
  private readonly compat = new Map<
    string,
    { checks: Counter<'target' | 'status'>; time: Histogram<'target'> }
  >();

  constructor(
    private readonly registry: Registry,
    opts: ProbeMetricsOptions,
  ) {
    const registers = [registry];
    const targets = this.targets;
    this.success = new Gauge({
      name: 'probe_success',
      help: 'Whether the last probe of the target succeeded (1) or failed (0)',
      labelNames: ['target', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const t of targets.values()) this.set({ target: t.target, kind: t.kind }, t.success);
      },
    });
    this.duration = new Gauge({
      name: 'probe_duration_seconds',
      help: 'Wall time of the last probe of the target, success or failure, in seconds',
      labelNames: ['target', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const t of targets.values()) this.set({ target: t.target, kind: t.kind }, t.duration);
      },
    });
    this.histogram = new Histogram({
      name: 'coalmine_probe_duration_seconds',
      help: 'Distribution of probe wall times, successful and failed, in seconds',
      labelNames: ['kind', 'target'],
      buckets: opts.buckets,
      registers,
    });
    this.network = new Histogram({
      name: 'coalmine_probe_network_seconds',
      help: "Distribution of successful probes' network time (kernel-timed phases; ICMP: mean RTT), in seconds",
      labelNames: ['kind', 'target'],
      buckets: opts.buckets,
      registers,
    });
    this.total = new Counter({
      name: 'coalmine_probes_total',
      help: 'Probe runs by result: success, or the error code of the failure',
      labelNames: ['kind', 'target', 'result'],
      registers,
    });
    if (opts.compat.includes('latency404')) {
      for (const [kind, prefix] of Object.entries(LATENCY404_PREFIX)) {
        this.compat.set(kind, {
          checks: new Counter({
            name: `${prefix}_health_check_total`,
            help: `Total number of ${prefix === 'ping' ? 'ping' : prefix.toUpperCase()} health checks performed`,
            labelNames: ['target', 'status'],
            registers,
          }),
          time: new Histogram({
            name: `${prefix}_response_time_seconds`,
            help: `${prefix === 'ping' ? 'ICMP ping' : prefix.toUpperCase()} response time in seconds`,
            labelNames: ['target'],
            buckets: LATENCY404_BUCKETS,
            registers,
          }),
        });
      }
    }
  }

  observe(o: Observation): void {
    const { name: target, kind, result } = o;
    const t = this.series(target, kind);
    const run = ++t.run;
    const seconds = nsToSeconds(result.durationNs);
    t.success = result.ok ? 1 : 0;
    t.duration = seconds;
    t.histogram.observe(seconds);
    if (result.ok && result.networkNs !== undefined) t.network.observe(nsToSeconds(result.networkNs));
    const outcome = result.ok ? 'success' : result.error.code;
    let total = t.totals.get(outcome);
    if (!total) t.totals.set(outcome, (total = this.total.labels({ kind, target, result: outcome })));
    total.inc();

    // A phase keeps its last value when a run did not reach it, as before; a value a run lacks (no TLS
    // this time, no answer) is not exported, so it cannot linger.
    const phases = result.phases ?? {};
    for (const phase in phases) {
      const ns = phases[phase as keyof typeof phases];
      if (ns === undefined) continue;
      const slot = t.phases.get(phase);
      if (slot) {
        slot.value = nsToSeconds(ns);
        slot.run = run;
      } else {
        this.phaseGauge(kind);
        t.phases.set(phase, { value: nsToSeconds(ns), run });
      }
    }

    const values = result.values ?? {};
    for (const name in values) {
      const value = values[name] as number;
      if (!Number.isFinite(value)) continue;
      const slot = t.values.get(name);
      if (slot) {
        slot.value = value;
        slot.run = run;
      } else {
        this.valueGauge(name);
        t.values.set(name, { value, run });
      }
    }

    const compat = this.compat.get(kind);
    if (compat) {
      compat.checks.inc({ target, status: result.ok ? 'success' : 'failure' });
      if (result.ok) compat.time.observe({ target }, seconds);
    }
  }

  /** The target's series, made once: observe runs once per probe, so it only overwrites numbers. */
  private series(target: string, kind: string): TargetSeries {
    const key = `${kind}\u0000${target}`;
    let t = this.targets.get(key);
    if (!t) {
      t = {
        target,
        kind,
        run: 0,
        success: 0,
        duration: 0,
        histogram: this.histogram.labels({ kind, target }),
        network: this.network.labels({ kind, target }),
        totals: new Map(),
        phases: new Map(),
        values: new Map(),
      };
      this.targets.set(key, t);
    }
    return t;
  }

  /** Forget a target that left the config, so its gauges stop being exported. */
  forget(target: string, kind: string): void {
    this.targets.delete(`${kind}\u0000${target}`);
  }

  private phaseGauge(kind: string): Gauge<'target' | 'phase'> {
    let g = this.phaseGauges.get(kind);
    if (!g) {
      const targets = this.targets;
      g = new Gauge({
        name: `probe_${kind}_duration_seconds`,
        help: `Duration of each phase of the last ${kind} probe, in seconds`,
        labelNames: ['target', 'phase'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const t of targets.values()) {
            if (t.kind !== kind) continue;
            for (const [phase, slot] of t.phases) this.set({ target: t.target, phase }, slot.value);
          }
        },
      });
      this.phaseGauges.set(kind, g);
    }
    return g;
  }

  private valueGauge(name: string): Gauge<'target'> {
    let g = this.valueGauges.get(name);
    if (!g) {
      const targets = this.targets;
      g = new Gauge({
        name: `probe_${name}`,
        help: VALUE_HELP[name] ?? `Probe value ${name} from the last run`,
        labelNames: ['target'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const t of targets.values()) {
            const slot = t.values.get(name);
            if (slot && slot.run === t.run) this.set({ target: t.target }, slot.value);
          }
        },
      });
      this.valueGauges.set(name, g);
    }
    return g;
  }
}
