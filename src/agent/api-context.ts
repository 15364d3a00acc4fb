import type {
  ApiAlerts,
  ApiContext,
  ApiEvent,
  ApiEvents,
  ApiStore,
  FlowInfo,
  TargetInfo,
} from '../api/v1/context.js';
import type { AgentStatus, AlertHistoryEntry, CanarySchedule, FlowSummary } from '../api/v1/contract.js';
import { toReport } from '../core/report.js';
import { addCounts, emptyCounts } from '../messaging/sequence.js';
import type { Observation } from '../core/types.js';
import type { WriterStats } from '../store/writer.js';
import type { Agent } from './agent.js';

/** Fan-out of live events to API clients. A listener that throws is dropped, never the agent. */
export class EventHub implements ApiEvents {
  private readonly listeners = new Set<(e: ApiEvent) => void>();

  subscribe(listener: (e: ApiEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  emit(e: ApiEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        this.listeners.delete(l);
      }
    }
  }

  get size(): number {
    return this.listeners.size;
  }
}

/** A flow is up while pings keep arriving: nothing for three of its intervals (at least 10 s) is down. */
const FLOW_SILENCE_MS = 10_000;

/** The agent as the /api/v1 routes see it. */
export class AgentApiContext implements ApiContext {
  readonly events = new EventHub();
  private flowTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly agent: Agent,
    readonly version: string,
    private readonly startedAt: number,
    readonly store?: ApiStore,
    private readonly writerStats?: () => WriterStats,
    private readonly storeEngine: AgentStatus['store']['engine'] = 'none',
  ) {}

  get alerts(): ApiAlerts | undefined {
    return this.agent.alerts;
  }

  /** Called by the agent on every alert state change. */
  alertChanged(e: AlertHistoryEntry): void {
    if (this.events.size > 0) this.events.emit({ event: 'alert', data: e });
  }

  /** Starts the 5-second flow events. */
  start(): void {
    this.flowTimer ??= setInterval(() => {
      if (this.events.size === 0) return;
      for (const f of this.flows()) this.events.emit({ event: 'flow', data: flowEvent(f) });
    }, 5000);
    this.flowTimer.unref();
  }

  stop(): void {
    clearInterval(this.flowTimer);
    this.flowTimer = undefined;
  }

  /** Called by the agent after every probe run. */
  observed(o: Observation): void {
    if (this.events.size > 0) this.events.emit({ event: 'probe', data: toReport(o) });
  }

  targets(): TargetInfo[] {
    const latest = new Map(this.agent.latest().map((o) => [o.name, o]));
    return this.agent.config.targets.map((t) => {
      const o = latest.get(t.name);
      return {
        name: t.name,
        kind: t.kind,
        target: t.target,
        intervalSeconds: t.intervalMs / 1000,
        ...(o ? { last: toReport(o) } : {}),
      };
    });
  }

  flows(): FlowInfo[] {
    const out: FlowInfo[] = [];
    const now = Date.now();
    for (const { c, transport, region } of this.agent.messaging.coalminers) {
      const byCanary = new Map<string, FlowInfo & { lastSeenMs: number }>();
      for (const r of c.reports()) {
        let f = byCanary.get(r.canary);
        if (!f) {
          f = {
            canary: r.canary,
            coalminer: c.name,
            transport,
            region,
            status: 'unknown',
            counts: emptyCounts(),
            lastSeenMs: 0,
          };
          byCanary.set(r.canary, f);
        }
        addCounts(f.counts, r.counts);
        f.lastSeenMs = Math.max(f.lastSeenMs, r.lastSeenMs);
      }
      for (const [canary, f] of byCanary) {
        f.status = now - f.lastSeenMs < FLOW_SILENCE_MS ? 'up' : 'down';
        const est = c.clockEstimate(canary);
        if (est) f.clockOffset = { seconds: est.offsetNs / 1e9, errorSeconds: est.errorNs / 1e9 };
        const h = c.window(canary, 3_600_000);
        const seconds = (p: number) => (h.count > 0 ? h.percentile(p) / 1e9 : null);
        const judged = f.counts.received + f.counts.lost;
        f.window = {
          p50: seconds(50),
          p95: seconds(95),
          p99: seconds(99),
          lossRatio: judged > 0 ? f.counts.lost / judged : null,
          received: f.counts.received,
        };
        const { lastSeenMs: _l, ...info } = f;
        out.push(info);
      }
    }
    return out;
  }

  async check(names?: readonly string[]) {
    return (await this.agent.check(names)).map(toReport);
  }

  /** Bounded: a canary keeps at most 2 x maxCoalminers entries (live, retired) and one pruned sum. */
  private canarySchedules(): CanarySchedule[] {
    return this.agent.messaging.canaries.flatMap((c) =>
      [...c.stats()].map(([coalminer, s]) => ({
        canary: c.name,
        coalminer,
        due: s.due,
        attempted: s.attempted,
        sent: s.sent,
        sendFailed: s.failed,
        behindSchedule: s.behind,
        behindScheduleSeconds: s.behindSeconds,
      })),
    );
  }

  status(): AgentStatus {
    const w = this.writerStats?.();
    return {
      version: this.version,
      startedAt: this.startedAt,
      targets: this.agent.config.targets.length,
      // A count only: flows() merges every flow's latency window, which a status call does not need.
      flows: this.agent.messaging.coalminers.reduce((n, { c }) => n + c.flowCanaries().length, 0),
      ...(this.agent.messaging.canaries.length > 0 ? { canaries: this.canarySchedules() } : {}),
      store: {
        engine: this.storeEngine,
        queued: w?.queued ?? 0,
        written: w?.written ?? 0,
        dropped: w?.dropped ?? 0,
        flushes: w?.flushes ?? 0,
        ...(w?.lastError ? { lastError: w.lastError } : {}),
      },
    };
  }
}

function flowEvent(f: FlowInfo): FlowSummary {
  return {
    canary: f.canary,
    coalminer: f.coalminer,
    transport: f.transport,
    region: f.region,
    status: f.status,
    counts: f.counts,
    window: f.window ?? { p50: null, p95: null, p99: null, lossRatio: null, received: f.counts.received },
    sparkline: [],
    ...(f.clockOffset ? { clockOffset: f.clockOffset } : {}),
  };
}
