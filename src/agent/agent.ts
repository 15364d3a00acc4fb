import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AgentConfig, TargetConfig } from '../config/schema.js';
import { systemClock, type Clock } from '../core/clock.js';
import { Scheduler } from '../core/scheduler.js';
import type { Observation } from '../core/types.js';
import { runProbe } from '../probes/run.js';
import { MessagingMetrics } from '../sinks/prometheus/messaging-metrics.js';
import { ProbeMetrics } from '../sinks/prometheus/probe-metrics.js';
import { MessagingRuntime } from './messaging.js';

export interface AgentOptions {
  clock?: Clock;
  /** Called after every probe run, scheduled or on demand. Must not throw. */
  onObservation?: (o: Observation) => void;
  /** Export process metrics (CPU, memory, ...) too. Default true. */
  processMetrics?: boolean;
  log?: (line: string) => void;
}

export const VERSION = '0.1.0';

const LOOP_SAMPLE_MS = 100;

/** prom-client's Node.js gauges whose names end in _total, which Prometheus reserves for counters. */
const MISNAMED_DEFAULT_METRICS = ['active_handles_total', 'active_requests_total', 'active_resources_total'];

/** Runs configured probes on their schedules and keeps their metrics and latest results. */
export class Agent {
  readonly registry = new Registry();
  readonly scheduler: Scheduler;
  private readonly clock: Clock;
  private readonly metrics: ProbeMetrics;
  private readonly targets = new Map<string, TargetConfig>();
  private readonly latestByName = new Map<string, Observation>();
  private readonly loopProbe: () => () => void;
  private stopLoopProbe: (() => void) | undefined;
  private closed = false;
  readonly messaging: MessagingRuntime;

  constructor(
    readonly config: AgentConfig,
    private readonly opts: AgentOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.metrics = new ProbeMetrics(this.registry, config.metrics);
    if (opts.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, prefix: 'coalmine_' });
      for (const name of MISNAMED_DEFAULT_METRICS)
        this.registry.removeSingleMetric(`coalmine_nodejs_${name}`);
    }

    const registers = [this.registry];
    const lateness = new Histogram({
      name: 'coalmine_scheduler_lateness_seconds',
      help: 'How late scheduled probe runs started relative to their slot',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    const skipped = new Counter({
      name: 'coalmine_scheduler_skipped_runs_total',
      help: 'Scheduled runs not started: the previous run was still going (overlap) or the agent was stalled',
      labelNames: ['target', 'reason'],
      registers,
    });
    this.scheduler = new Scheduler(this.clock, {
      lateness: (_id, s) => lateness.observe(s),
      skipped: (id, reason) => skipped.inc({ target: id, reason }),
    });

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
    this.messaging = new MessagingRuntime(
      config.messaging,
      new MessagingMetrics(this.registry, config.metrics.buckets),
      opts.log,
    );
  }

  start(): void {
    this.stopLoopProbe ??= this.loopProbe();
    for (const t of this.targets.values()) {
      this.scheduler.add({ id: t.name, intervalMs: t.intervalMs, run: () => this.runTarget(t) });
    }
    this.scheduler.start();
    void this.messaging.start();
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
    if (!this.closed) {
      this.latestByName.set(t.name, o);
      this.metrics.observe(o);
      try {
        this.opts.onObservation?.(o);
      } catch {
        // A listener's bug must not stop probing.
      }
    }
    return o;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.scheduler.stop();
    this.stopLoopProbe?.();
    await Promise.all([this.scheduler.idle(), this.messaging.close()]);
  }
}
