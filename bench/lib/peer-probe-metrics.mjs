// The ProbeMetrics of commit 13903e8 (dist/sinks/prometheus/probe-metrics.js as tsc emitted it), kept
// unchanged as bench/metrics.mjs's peer: prom-client Gauges, Histograms and Counters with a target label,
// rendered by one synchronous registry.metrics(). Only the import paths differ.
import { Counter, Gauge, Histogram } from 'prom-client';
import { nsToSeconds } from '../../dist/core/clock.js';
import { LATENCY404_BUCKETS } from '../../dist/config/schema.js';
import { VALUE_HELP } from '../../dist/probes/value-help.js';
/** Seed 001 (latency404) metric prefix for each probe kind. */
const LATENCY404_PREFIX = { http: 'http', tcp: 'tcp', icmp: 'ping', dns: 'dns' };
/**
 * Turns probe observations into Prometheus metrics on one registry: blackbox_exporter's names, our own
 * histograms and counters, and optionally seed 001's names. Probes never see this. Durations under
 * blackbox's and seed 001's names are wall time, as there; the kernel-timed network time is only under
 * ours (`coalmine_probe_network_seconds`).
 */
export class ProbeMetrics {
  registry;
  success;
  duration;
  phaseGauges = new Map();
  valueGauges = new Map();
  targets = new Map();
  histogram;
  network;
  total;
  compat = new Map();
  constructor(registry, opts) {
    this.registry = registry;
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
  observe(o) {
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
      const ns = phases[phase];
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
      const value = values[name];
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
  series(target, kind) {
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
  forget(target, kind) {
    this.targets.delete(`${kind}\u0000${target}`);
  }
  phaseGauge(kind) {
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
  valueGauge(name) {
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
//# sourceMappingURL=probe-metrics.js.map
