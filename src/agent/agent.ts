import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { AlertEngine } from '../alerting/engine.js';
import type { AlertHistoryEntry } from '../alerting/types.js';
import type { AgentConfig, TargetConfig } from '../config/schema.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { Scheduler, type SchedulerEvents } from '../core/scheduler.js';
import type { Observation } from '../core/types.js';
import { runProbe } from '../probes/run.js';
import { startProbeWorkers, type ProbeWorkerPool } from '../probes/workers/pool.js';
import { createSinks, teeSinks, type ObservationSink } from '../sinks/index.js';
import { MessagingRuntime } from './messaging.js';

export interface AgentOptions {
  clock?: Clock;
  /** Called after every probe run, scheduled or on demand. Must not throw. */
  onObservation?: (o: Observation) => void;
  /** Export process metrics (CPU, memory, ...) too. Default true. */
  processMetrics?: boolean;
  log?: Logger;
  /** Told about every alert state change (the API's live events). Must not throw. */
  onAlert?: (e: AlertHistoryEntry) => void;
  /** Where notifiers' `*Env` secrets are read; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Evaluate alert rules on their timer (default true); tests drive `agent.alerts.evaluate()`. */
  alertTimer?: boolean;
  /** Told each run's lateness and each skipped slot too, after the metrics (benches, tests). */
  scheduler?: SchedulerEvents;
}

export const VERSION = '0.1.0';

const LOOP_SAMPLE_MS = 100;
/** A run that starts this many seconds after its slot or later counts in coalmine_scheduler_late_runs_total. */
const LATE_RUN_SECONDS = 0.1;

/** prom-client's Node.js gauges whose names end in _total, which Prometheus reserves for counters. */
const MISNAMED_DEFAULT_METRICS = ['active_handles_total', 'active_requests_total', 'active_resources_total'];

/** Runs configured probes on their schedules and keeps their metrics and latest results. */
export class Agent {
  readonly registry = new Registry();
  readonly scheduler: Scheduler;
  private readonly clock: Clock;
  /** Where measurements go: /metrics, and OTLP when configured. */
  private readonly sinks: Required<ObservationSink>;
  private readonly targets = new Map<string, TargetConfig>();
  private readonly latestByName = new Map<string, Observation>();
  private readonly loopProbe: () => () => void;
  private stopLoopProbe: (() => void) | undefined;
  private closed = false;
  private readonly schedulerEvents: Required<SchedulerEvents>;
  /** The targets run in worker threads (probes.workers); undefined: all on this thread. */
  private probeWorkers: ProbeWorkerPool | undefined;
  readonly messaging: MessagingRuntime;
  /** Alert rules and notifiers; undefined without an alerting: section. */
  readonly alerts: AlertEngine | undefined;

  constructor(
    readonly config: AgentConfig,
    private readonly opts: AgentOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.sinks = teeSinks(
      createSinks(config, { registry: this.registry, clock: this.clock, version: VERSION, log: opts.log }),
    );
    if (opts.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, prefix: 'coalmine_' });
      for (const name of MISNAMED_DEFAULT_METRICS)
        this.registry.removeSingleMetric(`coalmine_nodejs_${name}`);
    }

    const registers = [this.registry];
    const lateness = new Histogram({
      name: 'coalmine_scheduler_lateness_seconds',
      help: 'How late scheduled probe runs started relative to their slot',
      // Up to a minute: a stalled agent's runs start seconds late, and 1 s was the last bucket.
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    const late = new Counter({
      name: 'coalmine_scheduler_late_runs_total',
      help: `Probe runs of the target that started ${LATE_RUN_SECONDS * 1000} ms or more after their slot`,
      labelNames: ['target'],
      registers,
    });
    // A series only for targets that ran late at least once, so 10,000 punctual targets cost nothing.
    const lateByTarget = new Map<string, { inc(): void }>();
    const skipped = new Counter({
      name: 'coalmine_scheduler_skipped_runs_total',
      help: 'Scheduled runs not started: the previous run was still going (overlap) or the agent was stalled',
      labelNames: ['target', 'reason'],
      registers,
    });
    const tee = opts.scheduler;
    this.schedulerEvents = {
      lateness: (id, s) => {
        lateness.observe(s);
        if (s >= LATE_RUN_SECONDS) {
          let c = lateByTarget.get(id);
          if (!c) lateByTarget.set(id, (c = late.labels({ target: id })));
          c.inc();
        }
        tee?.lateness?.(id, s);
      },
      skipped: (id, reason) => {
        skipped.inc({ target: id, reason });
        tee?.skipped?.(id, reason);
      },
    };
    this.scheduler = new Scheduler(this.clock, this.schedulerEvents);

    // How late a 100 ms timer fires is how long anything else waited for the event loop.
    const loopDelay = new Histogram({
      name: 'coalmine_agent_event_loop_delay_seconds',
      help: 'Event loop delay of the agent, sampled every 100 ms: how long work waited to run',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.loopProbe = () => {
      let expected = Number(this.clock.nowNs()) / 1e6 + LOOP_SAMPLE_MS;
      const timer = setInterval(() => {
        const now = Number(this.clock.nowNs()) / 1e6;
        loopDelay.observe(Math.max(0, now - expected) / 1000);
        expected = now + LOOP_SAMPLE_MS;
      }, LOOP_SAMPLE_MS);
      timer.unref();
      return () => clearInterval(timer);
    };
    new Gauge({
      name: 'coalmine_build_info',
      help: 'Version of the running coalmine agent; always 1',
      labelNames: ['version'],
      registers,
    }).set({ version: VERSION }, 1);
    const targetCount = new Gauge({ name: 'coalmine_targets', help: 'Configured probe targets', registers });
    targetCount.set(config.targets.length);

    for (const t of config.targets) this.targets.set(t.name, t);
    const messaging = (this.messaging = new MessagingRuntime(
      config.messaging,
      this.sinks.messaging,
      opts.log,
      config.alerting?.rules.some((r) => r.flow)
        ? (coalminer) => ({
            latency: (canary, fromIntendedSeconds) =>
              this.alerts?.observeLatency(canary, coalminer, fromIntendedSeconds),
          })
        : undefined,
    ));
    this.alerts = config.alerting
      ? new AlertEngine(config.alerting, {
          registry: this.registry,
          ...(opts.log && { log: opts.log }),
          ...(opts.env && { env: opts.env }),
          ...(opts.onAlert && { onTransition: opts.onAlert }),
          ...(opts.alertTimer === false && { timer: false }),
          now: () => this.clock.wallMs(),
          targets: config.targets,
          flowCounts: function* () {
            for (const { c } of messaging.coalminers)
              for (const f of c.flowCounts()) yield { ...f, coalminer: c.name };
          },
        })
      : undefined;
  }

  start(): void {
    this.stopLoopProbe ??= this.loopProbe();
    // Worker threads use the system clock: an injected clock holds only for the main thread's targets.
    this.probeWorkers ??= startProbeWorkers(
      this.config.probes?.workers,
      [...this.targets.values()],
      { ...this.schedulerEvents, observe: (o) => this.observe(o) },
      { ...(this.opts.log && { log: this.opts.log }) },
    );
    for (const t of this.targets.values()) {
      if (this.probeWorkers?.owns(t.name)) continue;
      this.scheduler.add({ id: t.name, intervalMs: t.intervalMs, run: () => this.runTarget(t) });
    }
    this.scheduler.start();
    void this.messaging.start();
    this.alerts?.start();
    this.sinks.start();
  }

  targetNames(): string[] {
    return [...this.targets.keys()];
  }

  target(name: string): TargetConfig | undefined {
    return this.targets.get(name);
  }

  latest(): Observation[] {
    return [...this.latestByName.values()];
  }

  /** Runs the named targets (all when none are named) now and returns their results. */
  async check(names?: readonly string[]): Promise<Observation[]> {
    const list = names ?? this.targetNames();
    const runs = list.map(async (name) => {
      const t = this.targets.get(name);
      if (!t) throw new Error(`no target named ${name}`);
      if (this.probeWorkers?.owns(name)) {
        await this.probeWorkers.runNow(name);
        return this.latestByName.get(name)!;
      }
      if (this.scheduler.has(name)) {
        await this.scheduler.runNow(name);
        return this.latestByName.get(name)!;
      }
      return this.runTarget(t);
    });
    return Promise.all(runs);
  }

  private async runTarget(t: TargetConfig): Promise<Observation> {
    const startedAtMs = this.clock.wallMs();
    const result = await runProbe(t.kind, t.target, t.options, { clock: this.clock, timeoutMs: t.timeoutMs });
    const o: Observation = { name: t.name, kind: t.kind, target: t.target, startedAtMs, result };
    if (!this.closed) this.observe(o);
    return o;
  }

  /** A finished run, from this thread or a probe worker (whose last batch arrives while it closes). */
  private observe(o: Observation): void {
    this.latestByName.set(o.name, o);
    this.sinks.observeProbe(o);
    this.alerts?.observeProbe(o);
    try {
      this.opts.onObservation?.(o);
    } catch {
      // A listener's bug must not stop probing.
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.scheduler.stop();
    this.stopLoopProbe?.();
    await Promise.all([this.scheduler.idle(), this.probeWorkers?.close(), this.messaging.close()]);
    await this.alerts?.close();
    // Last, so the final export carries every measurement.
    await this.sinks.close();
  }
}
