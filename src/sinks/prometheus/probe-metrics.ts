import type { Registry } from 'prom-client';
import { nsToSeconds } from '../../core/clock.js';
import type { Observation } from '../../core/types.js';
import { LATENCY404_BUCKETS } from '../../config/schema.js';
import { probes } from '../../probes/registry.js';
import { VALUE_HELP } from '../../probes/value-help.js';
import { formatValue, labelPair, registerTextFamily, type TextFamily } from './exposition.js';
import { HistogramBounds, HistogramCell } from './histogram-cells.js';

/** Seed 001 (latency404) metric prefix for each probe kind. */

/** A gauge's value from one run, kept in place: `run` says which run last set it. */
interface Slot {
  value: number;
  run: number;
}

/**
 * One target's last exported values, counters and histograms, all numbers a run overwrites or adds to
 * in place (prom-client's `Gauge.set` made a new entry object and label-hash string per call, each
 * promoted and left as old-generation garbage: a third of what a 200-target agent promoted). The label
 * texts are escaped once, when the target is first seen, and /metrics prints from these fields.
 */
interface TargetSeries {
  /** `target="...",kind="..."` (blackbox's gauges) and `kind="...",target="..."` (ours). */
  readonly targetKind: string;
  readonly kindTarget: string;
  /** `target="..."`. */
  readonly targetOnly: string;
  readonly kind: string;
  /** Forgotten (left the config): its gauges are no longer exported; its counters and histograms are. */
  retired: boolean;
  /** Counts the target's runs; a value slot whose `run` is older was not set by the last run. */
  run: number;
  success: number;
  duration: number;
  /** Its own cells with per-target buckets; otherwise its kind's, shared. */
  histogram: HistogramCell;
  network: HistogramCell;
  totals: Map<string, { value: number }>;
  phases: Map<string, Slot>;
  values: Map<string, Slot>;
  compat: { success: number; failure: number; time: HistogramCell } | undefined;
}

export interface ProbeMetricsOptions {
  buckets: number[];
  compat: readonly string[];
  /**
   * Bucket lines of coalmine_probe_duration_seconds and coalmine_probe_network_seconds per target
   * ({kind,target}); without, those two histograms are per kind ({kind}) and a target has its gauges
   * and coalmine_probes_total. Default false: 21 lines per histogram per target was most of a 10,000-
   * target agent's 21 MB exposition.
   */
  targetBuckets?: boolean;
}

/**
 * Turns probe observations into Prometheus metrics on one registry: blackbox_exporter's names, our own
 * histograms and counters, and optionally seed 001's names. Probes never see this. Durations under
 * blackbox's and seed 001's names are wall time, as there; the kernel-timed network time is only under
 * ours (`coalmine_probe_network_seconds`).
 *
 * Every family here has a series per target, so each is a TextFamily (exposition.ts): /metrics writes
 * it target by target in slices that let the event loop run, instead of prom-client's one synchronous
 * render of the whole registry.
 */
export class ProbeMetrics {
  private readonly targets = new Map<string, TargetSeries>();
  private readonly durationBounds: HistogramBounds;
  private readonly networkBounds: HistogramBounds;
  /** Per-kind histogram cells, without per-target buckets. */
  private readonly kindCells = new Map<string, { histogram: HistogramCell; network: HistogramCell }>();
  private readonly phaseKinds = new Set<string>();
  private readonly valueNames = new Set<string>();
  private readonly compatBounds = new Map<string, HistogramBounds>();
  private readonly targetBuckets: boolean;

  constructor(
    private readonly registry: Registry,
    opts: ProbeMetricsOptions,
  ) {
    this.targetBuckets = opts.targetBuckets ?? false;
    this.durationBounds = new HistogramBounds('coalmine_probe_duration_seconds', opts.buckets);
    this.networkBounds = new HistogramBounds('coalmine_probe_network_seconds', opts.buckets);
    const targets = this.targets;
    const live = function* (): Iterable<TargetSeries> {
      for (const t of targets.values()) if (!t.retired) yield t;
    };
    this.family({
      name: 'probe_success',
      help: 'Whether the last probe of the target succeeded (1) or failed (0)',
      type: 'gauge',
      *lines() {
        for (const t of live()) yield `probe_success{${t.targetKind}} ${t.success}\n`;
      },
      reset() {},
    });
    this.family({
      name: 'probe_duration_seconds',
      help: 'Wall time of the last probe of the target, success or failure, in seconds',
      type: 'gauge',
      *lines() {
        for (const t of live()) yield `probe_duration_seconds{${t.targetKind}} ${formatValue(t.duration)}\n`;
      },
      reset() {},
    });
    this.histogramFamily(
      this.durationBounds,
      'Distribution of probe wall times, successful and failed, in seconds',
      (t) => t.histogram,
      (c) => c.histogram,
    );
    this.histogramFamily(
      this.networkBounds,
      "Distribution of successful probes' network time (kernel-timed phases; ICMP: mean RTT), in seconds",
      (t) => t.network,
      (c) => c.network,
    );
    this.family({
      name: 'coalmine_probes_total',
      help: 'Probe runs by result: success, or the error code of the failure',
      type: 'counter',
      *lines() {
        for (const t of targets.values()) {
          let out = '';
          for (const [result, c] of t.totals)
            out += `coalmine_probes_total{${t.kindTarget},${labelPair('result', result)}} ${c.value}\n`;
          yield out;
        }
      },
      reset() {
        for (const t of targets.values()) for (const c of t.totals.values()) c.value = 0;
      },
    });
    if (opts.compat.includes('latency404')) {
      for (const p of Object.values(probes))
        if (p.compatPrefix !== undefined) this.compatFamilies(p.kind, p.compatPrefix);
    }
  }

  private family(f: TextFamily): void {
    registerTextFamily(this.registry, f);
  }

  /** A histogram family: a series per target with per-target buckets, else one per kind. */
  private histogramFamily(
    bounds: HistogramBounds,
    help: string,
    ofTarget: (t: TargetSeries) => HistogramCell,
    ofKind: (c: { histogram: HistogramCell; network: HistogramCell }) => HistogramCell,
  ): void {
    const { targets, kindCells, targetBuckets } = this;
    this.family({
      name: bounds.name,
      help,
      type: 'histogram',
      *lines() {
        if (targetBuckets) {
          for (const t of targets.values()) {
            const cell = ofTarget(t);
            // As prom-client: a series appears with its first observation.
            if (cell.observations > 0) yield cell.lines(t.kindTarget);
          }
        } else {
          for (const [kind, c] of kindCells) {
            const cell = ofKind(c);
            if (cell.observations > 0) yield cell.lines(labelPair('kind', kind));
          }
        }
      },
      reset() {
        for (const t of targets.values()) ofTarget(t).reset();
        for (const c of kindCells.values()) ofKind(c).reset();
      },
    });
  }

  /** Seed 001's families for one kind: per target, as seed 001 has them. */
  private compatFamilies(kind: string, prefix: string): void {
    const targets = this.targets;
    const name = `${prefix}_health_check_total`;
    this.family({
      name,
      help: `Total number of ${prefix === 'ping' ? 'ping' : prefix.toUpperCase()} health checks performed`,
      type: 'counter',
      *lines() {
        for (const t of targets.values()) {
          if (t.kind !== kind || !t.compat) continue;
          let out = '';
          if (t.compat.success > 0) out += `${name}{${t.targetOnly},status="success"} ${t.compat.success}\n`;
          if (t.compat.failure > 0) out += `${name}{${t.targetOnly},status="failure"} ${t.compat.failure}\n`;
          yield out;
        }
      },
      reset() {
        for (const t of targets.values())
          if (t.kind === kind && t.compat) t.compat.success = t.compat.failure = 0;
      },
    });
    const bounds = new HistogramBounds(`${prefix}_response_time_seconds`, LATENCY404_BUCKETS);
    this.compatBounds.set(kind, bounds);
    this.family({
      name: bounds.name,
      help: `${prefix === 'ping' ? 'ICMP ping' : prefix.toUpperCase()} response time in seconds`,
      type: 'histogram',
      *lines() {
        for (const t of targets.values()) {
          if (t.kind === kind && t.compat && t.compat.time.observations > 0)
            yield t.compat.time.lines(t.targetOnly);
        }
      },
      reset() {
        for (const t of targets.values()) if (t.kind === kind) t.compat?.time.reset();
      },
    });
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
    if (!total) t.totals.set(outcome, (total = { value: 0 }));
    total.value++;

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
        this.phaseFamily(kind);
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
        this.valueFamily(name);
        t.values.set(name, { value, run });
      }
    }

    if (t.compat) {
      if (result.ok) {
        t.compat.success++;
        t.compat.time.observe(seconds);
      } else t.compat.failure++;
    }
  }

  /** The target's series, made once: observe runs once per probe, so it only overwrites numbers. */
  private series(target: string, kind: string): TargetSeries {
    const key = `${kind}\u0000${target}`;
    let t = this.targets.get(key);
    if (t) {
      t.retired = false;
      return t;
    }
    let histogram: HistogramCell;
    let network: HistogramCell;
    if (this.targetBuckets) {
      histogram = new HistogramCell(this.durationBounds);
      network = new HistogramCell(this.networkBounds);
    } else {
      let cells = this.kindCells.get(kind);
      if (!cells) {
        cells = {
          histogram: new HistogramCell(this.durationBounds),
          network: new HistogramCell(this.networkBounds),
        };
        this.kindCells.set(kind, cells);
      }
      ({ histogram, network } = cells);
    }
    const compatBounds = this.compatBounds.get(kind);
    const k = labelPair('kind', kind);
    const tl = labelPair('target', target);
    t = {
      targetKind: `${tl},${k}`,
      kindTarget: `${k},${tl}`,
      targetOnly: tl,
      kind,
      retired: false,
      run: 0,
      success: 0,
      duration: 0,
      histogram,
      network,
      totals: new Map(),
      phases: new Map(),
      values: new Map(),
      compat: compatBounds && { success: 0, failure: 0, time: new HistogramCell(compatBounds) },
    };
    this.targets.set(key, t);
    return t;
  }

  /** Forget a target that left the config, so its gauges stop being exported. */
  forget(target: string, kind: string): void {
    const t = this.targets.get(`${kind}\u0000${target}`);
    if (t) t.retired = true;
  }

  /** probe_<kind>_duration_seconds{target,phase}, registered with the kind's first phase. */
  private phaseFamily(kind: string): void {
    if (this.phaseKinds.has(kind)) return;
    this.phaseKinds.add(kind);
    const targets = this.targets;
    const name = `probe_${kind}_duration_seconds`;
    this.family({
      name,
      help: `Duration of each phase of the last ${kind} probe, in seconds`,
      type: 'gauge',
      *lines() {
        for (const t of targets.values()) {
          if (t.kind !== kind || t.retired) continue;
          let out = '';
          for (const [phase, slot] of t.phases)
            out += `${name}{${t.targetOnly},${labelPair('phase', phase)}} ${formatValue(slot.value)}\n`;
          yield out;
        }
      },
      reset() {},
    });
  }

  /** probe_<value>{target}, registered when a run first has the value. */
  private valueFamily(value: string): void {
    if (this.valueNames.has(value)) return;
    this.valueNames.add(value);
    const targets = this.targets;
    const name = `probe_${value}`;
    this.family({
      name,
      help: VALUE_HELP[value] ?? `Probe value ${value} from the last run`,
      type: 'gauge',
      *lines() {
        for (const t of targets.values()) {
          if (t.retired) continue;
          const slot = t.values.get(value);
          if (slot && slot.run === t.run) yield `${name}{${t.targetOnly}} ${formatValue(slot.value)}\n`;
        }
      },
      reset() {},
    });
  }
}
