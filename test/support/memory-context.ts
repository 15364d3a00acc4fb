/**
 * An ApiContext and ApiStore held in arrays: for the API's tests and for working on the dashboard
 * without an agent. Same semantics as the agent and the store (percentiles from LatencyHistogram, so
 * within 0.1 %), none of their I/O.
 */
import type { ProbeReport } from '../../src/core/report.js';
import { LatencyHistogram } from '../../src/stats/histogram.js';
import type {
  ApiContext,
  ApiEvent,
  ApiEvents,
  ApiStore,
  ExportRecord,
  FlowInfo,
  FlowOverview,
  FlowWindow,
  ProbeWindow,
  TargetInfo,
  TargetOverview,
} from '../../src/api/v1/context.js';
import type {
  AgentStatus,
  CanarySchedule,
  SchedulePoint,
  ScheduleSeries,
  Series,
  SeriesPoint,
} from '../../src/api/v1/contract.js';
import { MemoryAlerts, type MemoryAlertsOptions } from './memory-alerts.js';

/** One flow's activity over one interval starting at `time`. */
export interface MemoryFlowRecord {
  time: number;
  canary: string;
  coalminer: string;
  received: number;
  lost: number;
  duplicated: number;
  reordered: number;
  late: number;
  /** Pings the coalminer's own full buffer dropped; default 0. */
  droppedLocally?: number;
  /** Latency of each ping received, seconds. */
  latencies: number[];
}

/** One sample of a canary's schedule with a coalminer over the interval starting at `time`. */
export interface MemoryScheduleRecord {
  time: number;
  canary: string;
  coalminer: string;
  /** Pings that fell due in the interval. */
  due: number;
  /** Pings attempted in the interval. */
  attempted: number;
  /** Gauges at the sample: pings behind schedule and by how long (seconds). */
  behind: number;
  behindSeconds: number;
}

const secondsToNs = (s: number) => s * 1e9;
const nsToSeconds = (ns: number) => ns / 1e9;

function percentiles(
  h: LatencyHistogram,
): Pick<SeriesPoint, 'p1' | 'p5' | 'p50' | 'p90' | 'p95' | 'p99' | 'max'> {
  const p = (q: number) => (h.count === 0 ? null : nsToSeconds(h.percentile(q)));
  return { p1: p(1), p5: p(5), p50: p(50), p90: p(90), p95: p(95), p99: p(99), max: p(100) };
}

/** Step buckets of [from, to): the index of time t, or -1 outside. */
function bucketOf(t: number, from: number, to: number, step: number): number {
  return t < from || t >= to ? -1 : Math.floor((t - from) / step);
}

export class MemoryStore implements ApiStore {
  readonly probes: ExportRecord[] = [];
  readonly flows: MemoryFlowRecord[] = [];
  readonly schedules: MemoryScheduleRecord[] = [];
  /** Calls of exportProbes whose iteration finished or was abandoned. */
  exportsClosed = 0;

  addProbe(r: ExportRecord): void {
    this.probes.push(r);
  }

  addFlow(r: MemoryFlowRecord): void {
    this.flows.push(r);
  }

  addSchedule(r: MemoryScheduleRecord): void {
    this.schedules.push(r);
  }

  async probeSeries(name: string, from: number, to: number, stepMs: number): Promise<Series> {
    const n = Math.ceil((to - from) / stepMs);
    const buckets = Array.from({ length: n }, () => ({
      h: new LatencyHistogram(),
      count: 0,
      failures: 0,
      phases: new Map<string, { sum: number; n: number }>(),
    }));
    for (const r of this.probes) {
      if (r.name !== name) continue;
      const i = bucketOf(r.time, from, to, stepMs);
      if (i < 0) continue;
      const b = buckets[i]!;
      b.count++;
      if (r.ok) b.h.record(secondsToNs(r.durationSeconds));
      else b.failures++;
      for (const [k, v] of Object.entries(r.phases)) {
        const s = b.phases.get(k) ?? { sum: 0, n: 0 };
        s.sum += v;
        s.n++;
        b.phases.set(k, s);
      }
    }
    const points = buckets.map((b, i): SeriesPoint => {
      const point: SeriesPoint = {
        time: from + i * stepMs,
        count: b.count,
        ...percentiles(b.h),
        failures: b.failures,
      };
      if (b.phases.size > 0)
        point.phases = Object.fromEntries([...b.phases].map(([k, s]) => [k, s.sum / s.n]));
      return point;
    });
    return { from, to, step: stepMs, resolution: 'raw', points };
  }

  async flowSeries(
    canary: string,
    coalminer: string,
    from: number,
    to: number,
    stepMs: number,
  ): Promise<Series> {
    const n = Math.ceil((to - from) / stepMs);
    const buckets = Array.from({ length: n }, () => ({
      h: new LatencyHistogram(),
      received: 0,
      lost: 0,
      duplicated: 0,
      reordered: 0,
      late: 0,
      droppedLocally: 0,
    }));
    for (const r of this.flows) {
      if (r.canary !== canary || r.coalminer !== coalminer) continue;
      const i = bucketOf(r.time, from, to, stepMs);
      if (i < 0) continue;
      const b = buckets[i]!;
      b.received += r.received;
      b.lost += r.lost;
      b.duplicated += r.duplicated;
      b.reordered += r.reordered;
      b.late += r.late;
      b.droppedLocally += r.droppedLocally ?? 0;
      for (const l of r.latencies) b.h.record(secondsToNs(l));
    }
    const points = buckets.map((b, i): SeriesPoint => ({
      time: from + i * stepMs,
      count: b.received,
      ...percentiles(b.h),
      failures: b.lost,
      duplicated: b.duplicated,
      reordered: b.reordered,
      late: b.late,
      droppedLocally: b.droppedLocally,
    }));
    return { from, to, step: stepMs, resolution: 'raw', points };
  }

  /** As the store: due and attempted summed per step, the behind gauges merged by maximum. */
  async scheduleSeries(
    canary: string,
    coalminer: string,
    from: number,
    to: number,
    stepMs: number,
  ): Promise<ScheduleSeries> {
    const n = Math.ceil((to - from) / stepMs);
    const points = Array.from({ length: n }, (_, i): SchedulePoint => ({
      time: from + i * stepMs,
      due: 0,
      attempted: 0,
      behindSchedule: 0,
      behindScheduleSeconds: 0,
    }));
    for (const r of this.schedules) {
      if (r.canary !== canary || r.coalminer !== coalminer) continue;
      const i = bucketOf(r.time, from, to, stepMs);
      if (i < 0) continue;
      const p = points[i]!;
      p.due += r.due;
      p.attempted += r.attempted;
      p.behindSchedule = Math.max(p.behindSchedule, r.behind);
      p.behindScheduleSeconds = Math.max(p.behindScheduleSeconds, r.behindSeconds);
    }
    return { from, to, step: stepMs, resolution: 'raw', points };
  }

  async probeWindow(name: string, from: number, to: number): Promise<ProbeWindow> {
    const h = new LatencyHistogram();
    let runs = 0;
    let ok = 0;
    for (const r of this.probes) {
      if (r.name !== name || r.time < from || r.time >= to) continue;
      runs++;
      if (r.ok) {
        ok++;
        h.record(secondsToNs(r.durationSeconds));
      }
    }
    const p = percentiles(h);
    return { p50: p.p50, p95: p.p95, successRatio: runs === 0 ? null : ok / runs, runs };
  }

  /** probeWindow and probeSeries' points by minute, for each name. */
  async probeOverview(names: readonly string[], from: number, to: number): Promise<TargetOverview[]> {
    return Promise.all(
      names.map(async (name): Promise<TargetOverview> => {
        const w = await this.probeWindow(name, from, to);
        const s = await this.probeSeries(name, from, to, 60_000);
        const points = s.points.map((p) => ({
          time: p.time,
          p50: p.p50,
          failures: p.failures,
          runs: p.count,
        }));
        const failures = points.reduce((n, p) => n + p.failures, 0);
        return { window: { ...w, failures }, points };
      }),
    );
  }

  async flowOverview(
    flows: readonly { canary: string; coalminer: string }[],
    from: number,
    to: number,
  ): Promise<FlowOverview[]> {
    return Promise.all(
      flows.map(async ({ canary, coalminer }): Promise<FlowOverview> => {
        const window = await this.flowWindow(canary, coalminer, from, to);
        const s = await this.flowSeries(canary, coalminer, from, to, 60_000);
        return { window, points: s.points.map((p) => ({ time: p.time, p50: p.p50, failures: p.failures })) };
      }),
    );
  }

  async flowWindow(canary: string, coalminer: string, from: number, to: number): Promise<FlowWindow> {
    const h = new LatencyHistogram();
    let received = 0;
    let lost = 0;
    for (const r of this.flows) {
      if (r.canary !== canary || r.coalminer !== coalminer || r.time < from || r.time >= to) continue;
      received += r.received;
      lost += r.lost;
      for (const l of r.latencies) h.record(secondsToNs(l));
    }
    const p = percentiles(h);
    const total = received + lost;
    return { p50: p.p50, p95: p.p95, p99: p.p99, lossRatio: total === 0 ? null : lost / total, received };
  }

  async *exportProbes(name: string, from: number, to: number): AsyncGenerator<ExportRecord> {
    const rows = this.probes.filter((r) => r.name === name && r.time >= from && r.time < to);
    rows.sort((a, b) => a.time - b.time);
    try {
      for (const r of rows) yield r;
    } finally {
      this.exportsClosed++;
    }
  }
}

export class MemoryEvents implements ApiEvents {
  private readonly listeners = new Set<(e: ApiEvent) => void>();

  get listenerCount(): number {
    return this.listeners.size;
  }

  subscribe(listener: (e: ApiEvent) => void): () => void {
    const own = (e: ApiEvent) => listener(e);
    this.listeners.add(own);
    return () => void this.listeners.delete(own);
  }

  emit(e: ApiEvent): void {
    for (const l of [...this.listeners]) l(e);
  }
}

export interface MemoryContextOptions {
  version?: string;
  targets: Omit<TargetInfo, 'last'>[];
  flows?: FlowInfo[];
  /** The canaries' schedules status() reports, as an agent that runs canaries does. */
  canaries?: CanarySchedule[];
  store?: MemoryStore;
  /** What a check of a target yields; default: ok, 1 ms, a connect phase. */
  probe?: (
    t: Omit<TargetInfo, 'last'>,
    now: number,
  ) => Omit<ProbeReport, 'name' | 'kind' | 'target' | 'time'>;
  now?: () => number;
  /** Alert rules, history and silences; without it the context has no alerting, like an agent without `alerting:`. */
  alerts?: Omit<MemoryAlertsOptions, 'now' | 'onTransition'>;
}

export class MemoryContext implements ApiContext {
  readonly version: string;
  readonly events = new MemoryEvents();
  readonly store: MemoryStore | undefined;
  /** Transitions go to the event stream as `alert` events, as the agent's do. */
  readonly alerts: MemoryAlerts | undefined;
  /** Every check() call's names, in order: what the SSRF tests look at. */
  readonly checkCalls: (readonly string[] | undefined)[] = [];
  private readonly configured: Omit<TargetInfo, 'last'>[];
  private readonly latest = new Map<string, ProbeReport>();
  private readonly flowList: FlowInfo[];
  private readonly now: () => number;
  private readonly startedAt: number;

  constructor(private readonly opts: MemoryContextOptions) {
    this.version = opts.version ?? '0.0.0-test';
    this.configured = opts.targets;
    this.flowList = opts.flows ?? [];
    this.store = opts.store;
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
    this.alerts = opts.alerts
      ? new MemoryAlerts({
          ...opts.alerts,
          now: this.now,
          onTransition: (e) => this.events.emit({ event: 'alert', data: e }),
        })
      : undefined;
  }

  targets(): TargetInfo[] {
    return this.configured.map((t) => ({ ...t, last: this.latest.get(t.name) }));
  }

  flows(): FlowInfo[] {
    return this.flowList;
  }

  /** Runs configured targets only; a name that is not configured is a bug of the caller, as in the agent. */
  async check(names?: readonly string[]): Promise<ProbeReport[]> {
    this.checkCalls.push(names === undefined ? undefined : [...names]);
    const list = names ?? this.configured.map((t) => t.name);
    return list.map((name) => {
      const t = this.configured.find((x) => x.name === name);
      if (!t) throw new Error(`no target named ${name}`);
      const now = this.now();
      const outcome = this.opts.probe?.(t, now) ?? {
        ok: true,
        durationSeconds: 0.001,
        phases: { connect: 0.001 },
      };
      const report: ProbeReport = {
        name: t.name,
        kind: t.kind,
        target: t.target,
        time: new Date(now).toISOString(),
        ...outcome,
      };
      this.record(report);
      return report;
    });
  }

  /** What the agent does after every run: keep it as the latest, store it, and tell the event streams. */
  record(report: ProbeReport): void {
    this.latest.set(report.name, report);
    const rec: ExportRecord = {
      time: Date.parse(report.time),
      name: report.name,
      kind: report.kind,
      target: report.target,
      ok: report.ok,
      durationSeconds: report.durationSeconds,
      phases: report.phases,
    };
    if (report.error) {
      rec.errorCode = report.error.code;
      rec.errorMessage = report.error.message;
    }
    if (report.values) rec.values = report.values;
    this.store?.addProbe(rec);
    this.events.emit({ event: 'probe', data: report });
  }

  status(): AgentStatus {
    return {
      version: this.version,
      startedAt: this.startedAt,
      targets: this.configured.length,
      flows: this.flowList.length,
      ...(this.opts.canaries ? { canaries: this.opts.canaries } : {}),
      store: {
        engine: this.store ? 'sqlite' : 'none', // the embedded engine this stands in for
        queued: 0,
        written: this.store?.probes.length ?? 0,
        dropped: 0,
        flushes: 0,
      },
    };
  }
}
