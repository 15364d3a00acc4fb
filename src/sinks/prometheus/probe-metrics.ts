import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { nsToSeconds } from '../../core/clock.js';
import { PHASES, type Observation } from '../../core/types.js';
import { LATENCY404_BUCKETS } from '../../config/schema.js';
import { VALUE_HELP } from '../../probes/value-help.js';

/** Seed 001 (latency404) metric prefix for each probe kind. */
const LATENCY404_PREFIX: Record<string, string> = { http: 'http', tcp: 'tcp', icmp: 'ping', dns: 'dns' };

type Child = { set(value: number): void };

/** One target's label children, and the values its last run exported. */
interface TargetSeries {
  success: Child;
  duration: Child;
  histogram: { observe(value: number): void };
  network: { observe(value: number): void };
  totals: Map<string, { inc(): void }>;
  phases: Map<string, Child>;
  values: Map<string, Child>;
  lastValues: Set<string>;
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
    this.success = new Gauge({
      name: 'probe_success',
      help: 'Whether the last probe of the target succeeded (1) or failed (0)',
      labelNames: ['target', 'kind'],
      registers,
    });
    this.duration = new Gauge({
      name: 'probe_duration_seconds',
      help: 'Wall time of the last probe of the target, success or failure, in seconds',
      labelNames: ['target', 'kind'],
      registers,
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
    const seconds = nsToSeconds(result.durationNs);
    t.success.set(result.ok ? 1 : 0);
    t.duration.set(seconds);
    t.histogram.observe(seconds);
    if (result.ok && result.networkNs !== undefined) t.network.observe(nsToSeconds(result.networkNs));
    const outcome = result.ok ? 'success' : result.error.code;
    let total = t.totals.get(outcome);
    if (!total) t.totals.set(outcome, (total = this.total.labels({ kind, target, result: outcome })));
    total.inc();

    const phases = result.phases ?? {};
    for (const phase in phases) {
      const ns = phases[phase as keyof typeof phases];
      if (ns === undefined) continue;
      let g = t.phases.get(phase);
      if (!g) t.phases.set(phase, (g = this.phaseGauge(kind).labels({ target, phase })));
      g.set(nsToSeconds(ns));
    }

    const values = result.values ?? {};
    let changed = false;
    let count = 0;
    for (const name in values) {
      const value = values[name] as number;
      if (!Number.isFinite(value)) continue;
      count++;
      let g = t.values.get(name);
      if (!g) t.values.set(name, (g = this.valueGauge(name).labels({ target })));
      g.set(value);
      if (!t.lastValues.has(name)) changed = true;
    }
    // A value the last run had and this one lacks (no TLS this time, no answer) must not linger.
    if (changed || count !== t.lastValues.size) {
      const now = new Set<string>();
      for (const name in values) if (Number.isFinite(values[name])) now.add(name);
      for (const name of t.lastValues) {
        if (!now.has(name)) this.valueGauges.get(name)?.remove({ target });
      }
      t.lastValues = now;
    }

    const compat = this.compat.get(kind);
    if (compat) {
      compat.checks.inc({ target, status: result.ok ? 'success' : 'failure' });
      if (result.ok) compat.time.observe({ target }, seconds);
    }
  }

  /** The target's label children, made once: observe runs once per probe, so it allocates nothing. */
  private series(target: string, kind: string): TargetSeries {
    const key = `${kind}\u0000${target}`;
    let t = this.targets.get(key);
    if (!t) {
      t = {
        success: this.success.labels({ target, kind }),
        duration: this.duration.labels({ target, kind }),
        histogram: this.histogram.labels({ kind, target }),
        network: this.network.labels({ kind, target }),
        totals: new Map(),
        phases: new Map(),
        values: new Map(),
        lastValues: new Set(),
      };
      this.targets.set(key, t);
    }
    return t;
  }

  /** Forget a target that left the config, so its series stop being exported. */
  forget(target: string, kind: string): void {
    const t = this.targets.get(`${kind}\u0000${target}`);
    this.targets.delete(`${kind}\u0000${target}`);
    this.success.remove({ target, kind });
    this.duration.remove({ target, kind });
    for (const name of t?.lastValues ?? []) this.valueGauges.get(name)?.remove({ target });
    const phaseGauge = this.phaseGauges.get(kind);
    if (phaseGauge) for (const phase of PHASES) phaseGauge.remove({ target, phase });
  }

  private phaseGauge(kind: string): Gauge<'target' | 'phase'> {
    let g = this.phaseGauges.get(kind);
    if (!g) {
      g = new Gauge({
        name: `probe_${kind}_duration_seconds`,
        help: `Duration of each phase of the last ${kind} probe, in seconds`,
        labelNames: ['target', 'phase'],
        registers: [this.registry],
      });
      this.phaseGauges.set(kind, g);
    }
    return g;
  }

  private valueGauge(name: string): Gauge<'target'> {
    let g = this.valueGauges.get(name);
    if (!g) {
      g = new Gauge({
        name: `probe_${name}`,
        help: VALUE_HELP[name] ?? `Probe value ${name} from the last run`,
        labelNames: ['target'],
        registers: [this.registry],
      });
      this.valueGauges.set(name, g);
    }
    return g;
  }
}
