import { silentLogger, type Logger } from '../core/log.js';
import { LatencyHistogram, RollingHistogram } from '../stats/histogram.js';
import { wallClockNs } from '../transports/base.js';
import type { Delivery, Transport } from '../transports/transport.js';
import { canaryChannel, coalminerChannel, DEFAULT_PREFIX } from './channels.js';
import { ClockSync, type ClockEstimate } from './clock-sync.js';
import { decode, encode, EnvelopeError, type Envelope } from './envelope.js';
import type { CoalminerObserver } from './observer.js';
import { SequenceTracker, type SequenceCounts, type SequenceOptions } from './sequence.js';

export interface CoalminerOptions {
  name: string;
  transport: Transport;
  /** Canaries to register with. */
  register: string[];
  prefix?: string;
  region?: string;
  /** Registrations are renewed every leaseMs / 3. Default 30 s. */
  leaseMs?: number;
  /** Clock sync requests to each canary, this often. Default 10 s (the first few come faster). */
  clockSyncIntervalMs?: number;
  /** Correct one-way latency by the estimated clock offset. Default true. */
  correctClock?: boolean;
  sequence?: SequenceOptions;
  /** Most flows (canary runs) tracked at once; the least recently active is evicted beyond it. */
  maxFlows?: number;
  /** A flow with no ping for this long is forgotten (after its gaps are judged). Default 10 min. */
  flowIdleMs?: number;
  wallNs?: () => bigint;
  observer?: CoalminerObserver;
  /** Its lines carry component `coalminer`, `coalminer` (the name), `transport` (the kind) and `region`. */
  log?: Logger;
}

export interface FlowReport {
  canary: string;
  runId: string;
  counts: SequenceCounts;
  /** Exact percentiles (0.1 %) over the whole flow, from the intended send time, clock-corrected. */
  latency: LatencySummary;
  /** The same from the actual send time. */
  latencyFromSent: LatencySummary;
  lastSeenMs: number;
}

export interface LatencySummary {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export function summarize(h: LatencyHistogram): LatencySummary {
  const s = (ns: number) => ns / 1e9;
  return {
    count: h.count,
    min: s(h.min),
    p50: s(h.percentile(50)),
    p90: s(h.percentile(90)),
    p95: s(h.percentile(95)),
    p99: s(h.percentile(99)),
    p999: s(h.percentile(99.9)),
    max: s(h.max),
    mean: s(h.mean),
  };
}

interface Flow {
  key: string;
  canary: string;
  runId: bigint;
  tracker: SequenceTracker;
  all: LatencyHistogram;
  allFromSent: LatencyHistogram;
  rolling: RollingHistogram;
  /** Latencies since the last sampleFlows(), for the results store. */
  interval: LatencyHistogram;
  lastSeenMs: number;
}

/** One flow's activity since the previous sample: what the results store keeps. */
export interface FlowSample {
  canary: string;
  runId: string;
  counts: SequenceCounts;
  latency: LatencyHistogram;
}

/**
 * Receives pings from the canaries it registered with and turns them into latency, loss, duplicates,
 * reordering and lateness per flow (one canary run). Registers and renews its registration, answers
 * echoes, and keeps an NTP-style clock offset to each canary so one-way latency between hosts is right.
 */
export class Coalminer {
  private readonly prefix: string;
  private readonly flows = new Map<string, Flow>();
  private readonly clocks = new Map<string, ClockSync>();
  private readonly confirmed = new Map<string, bigint>();
  private readonly wallNs: () => bigint;
  private readonly abort = new AbortController();
  private readonly timers: NodeJS.Timeout[] = [];
  private started = false;
  private stopped = false;
  private syncSeq = 0n;
  foreign = 0;
  evictedFlows = 0;
  private readonly log: Logger;

  constructor(private readonly opts: CoalminerOptions) {
    this.log = (opts.log ?? silentLogger).child({
      component: 'coalminer',
      coalminer: opts.name,
      transport: opts.transport.kind,
      ...(opts.region ? { region: opts.region } : {}),
    });
    this.prefix = opts.prefix ?? DEFAULT_PREFIX;
    this.wallNs = opts.wallNs ?? wallClockNs;
  }

  get name(): string {
    return this.opts.name;
  }

  private nowMs(): number {
    return Number(this.wallNs() / 1_000_000n);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const deliveries = this.opts.transport.subscribe(
      coalminerChannel(this.prefix, this.opts.name),
      this.abort.signal,
    );
    void this.consume(deliveries);
    const lease = this.opts.leaseMs ?? 30_000;
    const syncEvery = this.opts.clockSyncIntervalMs ?? 10_000;
    this.registerAll();
    this.syncAll();
    // A few quick clock samples first, so the estimate is good early; then the steady rate.
    for (const ms of [200, 400, 800, 1600]) this.timers.push(setTimeout(() => this.syncAll(), ms));
    this.timers.push(setInterval(() => this.registerAll(), Math.max(100, lease / 3)));
    // Until a canary confirms (it may start after us, or miss the first request on a pub/sub system),
    // ask again every second rather than waiting for the renewal.
    this.timers.push(
      setInterval(
        () => {
          for (const c of this.opts.register)
            if (!this.confirmed.has(c)) void this.sendTo(c, { type: 'register' });
        },
        Math.min(1000, Math.max(100, lease / 3)),
      ),
    );
    this.timers.push(setInterval(() => this.syncAll(), syncEvery));
    this.timers.push(setInterval(() => this.tick(), 250));
    for (const t of this.timers) t.unref();
  }

  /** Unregisters from every canary, then stops. Flows stay readable. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    await Promise.allSettled(this.opts.register.map((c) => this.sendTo(c, { type: 'unregister' })));
    this.abort.abort();
    this.tick();
  }

  /** Judges gaps now (declaring lost what waited past the loss timeout) and forgets idle flows. */
  tick(): void {
    const now = this.nowMs();
    const idle = this.opts.flowIdleMs ?? 600_000;
    for (const [key, f] of this.flows) {
      const before = f.tracker.declaredLost;
      f.tracker.tick(now);
      if (f.tracker.declaredLost > before)
        this.opts.observer?.lost?.(f.canary, f.tracker.declaredLost - before);
      if (f.lastSeenMs + idle < now && f.tracker.counts().inFlight === 0) this.flows.delete(key);
    }
  }

  flowCount(): number {
    return this.flows.size;
  }

  /** The canaries this coalminer has live flows from (each once, however many runs). */
  flowCanaries(): string[] {
    return [...new Set([...this.flows.values()].map((f) => f.canary))];
  }

  /** Canaries this coalminer has heard from or registers with. */
  canaries(): string[] {
    return [
      ...new Set([
        ...this.opts.register,
        ...this.clocks.keys(),
        ...[...this.flows.values()].map((f) => f.canary),
      ]),
    ];
  }

  clockEstimate(canary: string): ClockEstimate | undefined {
    return this.clocks.get(canary)?.estimate();
  }

  isConfirmedBy(canary: string): boolean {
    return this.confirmed.has(canary);
  }

  /** Pings in flight (gaps not yet judged) per canary, over its live flows. */
  inFlight(): Map<string, number> {
    const out = new Map<string, number>();
    for (const f of this.flows.values())
      out.set(f.canary, (out.get(f.canary) ?? 0) + f.tracker.counts().inFlight);
    return out;
  }

  /** Each live flow's cumulative counts, without the latency summaries reports() computes. */
  flowCounts(): { canary: string; runId: string; counts: SequenceCounts }[] {
    return [...this.flows.values()].map((f) => ({
      canary: f.canary,
      runId: f.runId.toString(16),
      counts: f.tracker.counts(),
    }));
  }

  reports(): FlowReport[] {
    return [...this.flows.values()].map((f) => ({
      canary: f.canary,
      runId: f.runId.toString(16),
      counts: f.tracker.counts(),
      latency: summarize(wholeFlow(f)),
      latencyFromSent: summarize(f.allFromSent),
      lastSeenMs: f.lastSeenMs,
    }));
  }

  /**
   * Each live flow's cumulative counts and the latencies recorded since the previous call (which are
   * then forgotten). The caller turns cumulative counts into deltas.
   */
  sampleFlows(): FlowSample[] {
    return [...this.flows.values()].map((f) => {
      const latency = f.interval;
      f.all.merge(latency);
      f.interval = new LatencyHistogram();
      return { canary: f.canary, runId: f.runId.toString(16), counts: f.tracker.counts(), latency };
    });
  }

  /** Whole-flow latency histograms (from intended, from sent) of every live flow, for merging. */
  histograms(): [LatencyHistogram, LatencyHistogram][] {
    return [...this.flows.values()].map((f) => [wholeFlow(f), f.allFromSent]);
  }

  /** Latency over the last `windowMs` for one canary (all its runs), from the intended send time. */
  window(canary: string, windowMs: number): LatencyHistogram {
    const h = new LatencyHistogram();
    const now = this.nowMs();
    for (const f of this.flows.values()) if (f.canary === canary) h.merge(f.rolling.window(windowMs, now));
    return h;
  }

  private registerAll(): void {
    for (const c of this.opts.register) void this.sendTo(c, { type: 'register' });
  }

  private syncAll(): void {
    for (const c of this.opts.register) {
      const t1 = this.wallNs();
      void this.sendTo(c, { type: 'clocksync', stamps: [t1], seq: this.syncSeq++ });
    }
  }

  private async sendTo(canary: string, fields: Partial<Envelope> & Pick<Envelope, 'type'>): Promise<void> {
    const now = this.wallNs();
    const env: Envelope = {
      canary,
      coalminer: this.opts.name,
      runId: 0n,
      seq: 0n,
      intendedNs: now,
      sentNs: now,
      ...fields,
    };
    try {
      await this.opts.transport.publish(
        canaryChannel(this.prefix, canary),
        encode(env, this.opts.transport.textOnly),
      );
    } catch {
      // Registration and sync are retried on their timers; a broker outage is reported by the transport.
    }
  }

  private async consume(deliveries: AsyncIterable<Delivery>): Promise<void> {
    try {
      for await (const d of deliveries) this.onDelivery(d);
    } catch (err) {
      // No ping can arrive any more: every flow will look like total loss.
      this.log.error('subscription ended', { err });
    }
  }

  private onDelivery(d: Delivery): void {
    let e: Envelope;
    try {
      e = decode(d.payload);
    } catch (err) {
      if (!(err instanceof EnvelopeError)) throw err;
      this.foreign++;
      this.opts.observer?.foreign?.();
      return;
    }
    if (e.coalminer !== this.opts.name) {
      this.foreign++;
      this.opts.observer?.foreign?.();
      return;
    }
    switch (e.type) {
      case 'ping':
        return this.onPing(e, d);
      case 'notice': {
        if (e.failed) {
          const tracker = this.flow(e.canary, e.runId).tracker;
          const before = tracker.sendFailedArrived;
          tracker.noteFailed(e.failed.map(([a, b]) => [Number(a), Number(b)]));
          // News of failures for pings that had already arrived: in-doubt publishes that got through.
          if (tracker.sendFailedArrived > before)
            this.opts.observer?.sendFailedArrived?.(e.canary, tracker.sendFailedArrived - before);
        }
        return;
      }
      case 'confirm': {
        if (!this.confirmed.has(e.canary)) this.log.info('registered with canary', { canary: e.canary });
        this.confirmed.set(e.canary, e.runId);
        this.flow(e.canary, e.runId).tracker.start(Number(e.seq));
        return;
      }
      case 'clocksync-reply': {
        const [t1, t2, t3] = e.stamps ?? [];
        if (t1 === undefined || t2 === undefined || t3 === undefined) return;
        let sync = this.clocks.get(e.canary);
        if (!sync) this.clocks.set(e.canary, (sync = new ClockSync()));
        sync.add(t1, t2, t3, d.receivedNs);
        return;
      }
      default:
        return;
    }
  }

  private lastFlow: Flow | undefined;

  private flow(canary: string, runId: bigint): Flow {
    // Consecutive pings almost always belong to the same flow: skip building the key for them.
    const last = this.lastFlow;
    if (last && last.runId === runId && last.canary === canary && this.flows.get(last.key) === last)
      return last;
    const key = `${canary}\u0000${runId}`;
    let f = this.flows.get(key);
    if (!f) {
      f = {
        key,
        canary,
        runId,
        tracker: new SequenceTracker(this.opts.sequence),
        all: new LatencyHistogram(),
        allFromSent: new LatencyHistogram(),
        rolling: new RollingHistogram(),
        interval: new LatencyHistogram(),
        lastSeenMs: this.nowMs(),
      };
      this.flows.set(key, f);
      const max = this.opts.maxFlows ?? 1000;
      if (this.flows.size > max) {
        let oldest: [string, Flow] | undefined;
        for (const entry of this.flows)
          if (!oldest || entry[1].lastSeenMs < oldest[1].lastSeenMs) oldest = entry;
        if (oldest) {
          this.flows.delete(oldest[0]);
          this.evictedFlows++;
        }
      }
    }
    this.lastFlow = f;
    return f;
  }

  private onPing(e: Envelope, d: Delivery): void {
    const f = this.flow(e.canary, e.runId);
    const nowMs = Number(d.receivedNs / 1_000_000n);
    f.lastSeenMs = nowMs;
    const inDoubtBefore = f.tracker.sendFailedArrived;
    if (e.failed) f.tracker.noteFailed(e.failed.map(([a, b]) => [Number(a), Number(b)]));
    const lostBefore = f.tracker.declaredLost;
    const arrival = f.tracker.observe(Number(e.seq), nowMs);
    this.opts.observer?.arrival?.(e.canary, arrival);
    if (f.tracker.declaredLost > lostBefore)
      this.opts.observer?.lost?.(e.canary, f.tracker.declaredLost - lostBefore);
    if (f.tracker.sendFailedArrived > inDoubtBefore)
      this.opts.observer?.sendFailedArrived?.(e.canary, f.tracker.sendFailedArrived - inDoubtBefore);
    if (e.echo && arrival !== 'duplicate') {
      void this.sendTo(e.canary, {
        type: 'echo',
        runId: e.runId,
        seq: e.seq,
        sentNs: e.sentNs,
        intendedNs: e.intendedNs,
        stamps: [d.receivedNs],
      });
    }
    if (arrival === 'duplicate' || arrival === 'stale') return;
    // Our clock plus the canary's offset puts the arrival on the canary's clock. An offset within its own
    // error bound cannot be told from zero (same host, or asymmetric paths): correcting by it would only
    // add the asymmetry as error.
    const est = this.opts.correctClock === false ? undefined : this.clocks.get(e.canary)?.estimate();
    const clock = est && Math.abs(est.offsetNs) > est.errorNs ? est : undefined;
    // Differences first: wall-clock ns do not fit a double exactly, their differences do.
    const offset = clock?.offsetNs ?? 0;
    const fromIntended = Number(d.receivedNs - e.intendedNs) + offset;
    const fromSent = Number(d.receivedNs - e.sentNs) + offset;
    f.allFromSent.record(fromSent);
    f.rolling.record(fromIntended, nowMs);
    // The whole-flow histogram is the merge of the intervals: one record per ping, not two.
    f.interval.record(fromIntended);
    this.opts.observer?.latency?.(e.canary, fromIntended / 1e9, fromSent / 1e9);
    if (d.brokerNs !== undefined) {
      this.opts.observer?.hops?.(
        e.canary,
        Number(d.brokerNs - e.sentNs) / 1e9,
        Number(d.receivedNs - d.brokerNs) / 1e9,
      );
    }
  }
}

/** Everything a flow recorded from the intended send time: the sampled intervals plus the current one. */
function wholeFlow(f: Flow): LatencyHistogram {
  const h = new LatencyHistogram();
  h.merge(f.all);
  h.merge(f.interval);
  return h;
}
