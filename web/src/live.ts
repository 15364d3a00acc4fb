/**
 * The overview's live state: targets and flows from the API, kept current by the event stream.
 * Events arrive many per second with many targets, so changes are applied to plain maps at once and
 * the view is told at most every `notifyMs` (one render for a burst, not one per event).
 */
import type { AlertHistoryEntry, FlowSummary, TargetSummary } from '../../src/api/v1/contract.js';
import type { ProbeReport } from '../../src/core/report.js';
import type { Api } from './api.js';

export type Connection = 'connecting' | 'live' | 'reconnecting' | 'closed';

/** An alert rule's state change from the stream; `gap` after a reconnect, when some may have been missed. */
export type AlertStreamEvent = { type: 'alert'; entry: AlertHistoryEntry } | { type: 'gap' };

const SPARKLINE_POINTS = 60;
const DEFAULT_STEP_MS = 60_000;

export function flowKey(f: { canary: string; coalminer: string }): string {
  return `${f.canary}\u0000${f.coalminer}`;
}

export class LiveState {
  readonly targets = new Map<string, TargetSummary>();
  readonly flows = new Map<string, FlowSummary>();
  connection: Connection = 'connecting';
  loaded = false;
  error: string | null = null;
  events = 0;
  /** Bumped on every applied change; views compare it to decide whether to render. */
  version = 0;

  /** Live samples of the sparkline bucket the stream opened, so its median is exact for what we saw. */
  private readonly liveBuckets = new Map<string, { time: number; samples: number[] }>();
  private readonly listeners = new Set<() => void>();
  private readonly alertListeners = new Set<(e: AlertStreamEvent) => void>();
  private notifyTimer: number | undefined;
  private source: EventSource | undefined;
  private retryTimer: number | undefined;
  private refreshTimer: number | undefined;
  private retries = 0;
  private closed = false;

  constructor(
    private readonly api: Api,
    private readonly notifyMs = 150,
    private readonly refreshMs = 60_000,
  ) {}

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Alert events go straight to these listeners (they are few, and each one matters). */
  onAlert(fn: (e: AlertStreamEvent) => void): () => void {
    this.alertListeners.add(fn);
    return () => this.alertListeners.delete(fn);
  }

  async start(): Promise<void> {
    await this.reload();
    this.connect();
    // The window figures (p95, success over the last hour) come from the store; refresh them now and then.
    this.refreshTimer = window.setInterval(() => void this.reload(), this.refreshMs);
  }

  close(): void {
    this.closed = true;
    this.source?.close();
    window.clearTimeout(this.retryTimer);
    window.clearTimeout(this.notifyTimer);
    window.clearInterval(this.refreshTimer);
    this.connection = 'closed';
  }

  async reload(): Promise<void> {
    try {
      const [t, f] = await Promise.all([this.api.targets(), this.api.flows()]);
      this.targets.clear();
      for (const target of t.targets) this.targets.set(target.name, target);
      this.flows.clear();
      for (const flow of f.flows) this.flows.set(flowKey(flow), flow);
      this.liveBuckets.clear();
      this.loaded = true;
      this.error = null;
    } catch (e) {
      this.error = (e as Error).message;
    }
    this.changed(true);
  }

  private connect(): void {
    if (this.closed) return;
    const source = this.api.events();
    this.source = source;
    source.addEventListener('open', () => {
      this.connection = 'live';
      // After a gap, the maps may have missed events: take a fresh copy.
      if (this.retries > 0) {
        void this.reload();
        for (const fn of this.alertListeners) fn({ type: 'gap' });
      }
      this.retries = 0;
      this.changed(true);
    });
    source.addEventListener('probe', (e) => this.onEvent(e as MessageEvent<string>, 'probe'));
    source.addEventListener('flow', (e) => this.onEvent(e as MessageEvent<string>, 'flow'));
    source.addEventListener('alert', (e) => this.onAlertEvent(e as MessageEvent<string>));
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (a 401, or the agent went away); retry ourselves with backoff.
        source.close();
        this.connection = 'reconnecting';
        this.retries++;
        const delay = Math.min(30_000, 1000 * 2 ** Math.min(this.retries, 5));
        this.retryTimer = window.setTimeout(() => this.connect(), delay);
      } else {
        this.connection = 'reconnecting';
        this.retries++;
      }
      this.changed(true);
    });
  }

  private onEvent(e: MessageEvent<string>, type: 'probe' | 'flow'): void {
    let data: unknown;
    try {
      data = JSON.parse(e.data);
    } catch {
      return; // A malformed event must not break the page; the next refresh corrects the state.
    }
    if (type === 'probe') this.applyProbe(data as ProbeReport);
    else this.applyFlow(data as FlowSummary);
  }

  private onAlertEvent(e: MessageEvent<string>): void {
    let entry: AlertHistoryEntry;
    try {
      entry = JSON.parse(e.data) as AlertHistoryEntry;
    } catch {
      return;
    }
    if (typeof entry?.rule !== 'string' || typeof entry.to !== 'string' || typeof entry.at !== 'number')
      return;
    this.events++;
    for (const fn of this.alertListeners) fn({ type: 'alert', entry });
  }

  applyProbe(r: ProbeReport): void {
    if (typeof r?.name !== 'string') return;
    const time = Date.parse(r.time);
    if (!Number.isFinite(time)) return;
    const prev = this.targets.get(r.name);
    const base: TargetSummary = prev ?? {
      name: r.name,
      kind: r.kind,
      target: r.target,
      intervalSeconds: 0,
      status: 'unknown',
      window: { p50: null, p95: null, successRatio: null, runs: 0 },
      sparkline: [],
    };
    const last: NonNullable<TargetSummary['last']> = {
      time,
      ok: r.ok,
      durationSeconds: r.durationSeconds,
      phases: r.phases ?? {},
    };
    if (r.networkSeconds !== undefined) last.networkSeconds = r.networkSeconds;
    if (r.error) last.error = { code: r.error.code, message: r.error.message };
    this.targets.set(r.name, {
      ...base,
      status: r.ok ? 'up' : 'down',
      last,
      sparkline: this.extendSparkline(r.name, base.sparkline, time, r.ok, r.durationSeconds),
    });
    this.events++;
    this.changed();
  }

  applyFlow(f: FlowSummary): void {
    if (typeof f?.canary !== 'string' || typeof f.coalminer !== 'string') return;
    this.flows.set(flowKey(f), f);
    this.events++;
    this.changed();
  }

  /**
   * Adds one run to a sparkline of per-step buckets [time, p50, failures]. Inside the store's last
   * bucket only failures are added (its median came from samples we never saw); later runs open
   * buckets of their own whose median is exact over the runs the stream delivered.
   */
  private extendSparkline(
    name: string,
    line: TargetSummary['sparkline'],
    time: number,
    ok: boolean,
    seconds: number,
  ): TargetSummary['sparkline'] {
    const n = line.length;
    const lastPoint = line[n - 1];
    const prevPoint = line[n - 2];
    const step =
      lastPoint && prevPoint && lastPoint[0] > prevPoint[0] ? lastPoint[0] - prevPoint[0] : DEFAULT_STEP_MS;
    const out = line.slice();
    if (lastPoint && time < lastPoint[0]) return line; // older than what we show
    if (lastPoint && time < lastPoint[0] + step) {
      const live = this.liveBuckets.get(name);
      if (live && live.time === lastPoint[0]) {
        if (ok) live.samples.push(seconds);
        out[n - 1] = [lastPoint[0], median(live.samples), lastPoint[2] + (ok ? 0 : 1)];
      } else {
        out[n - 1] = [lastPoint[0], lastPoint[1], lastPoint[2] + (ok ? 0 : 1)];
      }
      return out;
    }
    const start = lastPoint
      ? lastPoint[0] + Math.floor((time - lastPoint[0]) / step) * step
      : time - (time % step);
    const samples = ok ? [seconds] : [];
    this.liveBuckets.set(name, { time: start, samples });
    out.push([start, median(samples), ok ? 0 : 1]);
    while (out.length > SPARKLINE_POINTS) out.shift();
    return out;
  }

  private changed(now = false): void {
    this.version++;
    if (now) {
      window.clearTimeout(this.notifyTimer);
      this.notifyTimer = undefined;
      for (const fn of this.listeners) fn();
      return;
    }
    if (this.notifyTimer !== undefined) return;
    this.notifyTimer = window.setTimeout(() => {
      this.notifyTimer = undefined;
      for (const fn of this.listeners) fn();
    }, this.notifyMs);
  }
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = xs.slice().sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
