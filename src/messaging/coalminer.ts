import { silentLogger, type Logger } from '../core/log.js';
import { LatencyHistogram, RollingHistogram } from '../stats/histogram.js';
import { DeliveryQueue, wallClockNs } from '../transports/base.js';
import { reportsDrops, type Delivery, type Transport } from '../transports/transport.js';
import { canaryChannel, coalminerChannel, DEFAULT_PREFIX } from './channels.js';
import { ClockSync, type ClockEstimate } from './clock-sync.js';
import { decode, encode, EnvelopeError, type Envelope, type EnvelopeKey } from './envelope.js';
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
  /**
   * Canaries whose pings are taken without a confirm (an in-process pair or a test whose canary pings a
   * fixed list); their runs start at their first ping. Pings from any canary neither registered with
   * nor named here are foreign.
   */
  accept?: string[];
  /** Most runs tracked per canary (a restarted canary is a new run); beyond it one is evicted. Default 4. */
  maxRunsPerCanary?: number;
  /**
   * A secret shared with the canaries: every envelope is signed and only signed ones are taken (unsigned
   * or wrongly signed ones are foreign), so nobody else on the channel can forge pings or clock replies.
   */
  secret?: EnvelopeKey;
  /** A flow with no ping for this long is forgotten (after its gaps are judged). Default 10 min. */
  flowIdleMs?: number;
  wallNs?: () => bigint;
  observer?: CoalminerObserver;
  /** Its lines carry component `coalminer`, `coalminer` (the name), `transport` (the kind) and `region`. */
  log?: Logger;
}

/**
 * Why a message on the coalminer's channel was not taken as one of its pings. A fixed set, so the
 * `reason` label stays bounded whatever arrives.
 */
export const FOREIGN_REASONS = [
  /** Not an envelope (bad magic, version, truncated, too large, invalid names). */
  'undecodable',
  /** An envelope addressed to another coalminer. */
  'other_coalminer',
  /** From a canary this coalminer neither registered with nor accepts. */
  'unknown_canary',
  /** A ping from a run the canary never confirmed (a restart before its confirm, or forged). */
  'unknown_run',
  /** A sequence number, interval or failure range that the flow's rate and the elapsed time cannot explain. */
  'implausible',
  /** A clock-sync reply to no request of ours. */
  'unsolicited',
  /** Unsigned while a shared secret is configured. */
  'unsigned',
  /** Signed, but not with the shared secret. */
  'bad_signature',
  /** Handling it failed (a bug: logged). */
  'error',
] as const;
export type ForeignReason = (typeof FOREIGN_REASONS)[number];

/**
 * How far past what its rate explains a flow's head may be: the canary may send a burst of pings that
 * were due while it was behind (5 s by default before it skips them as stalled), and its confirm takes a
 * while to arrive. A forged ping under a known run can move the head at most this far (sign to prevent it).
 */
const HEAD_SLACK_NS = 10_000_000_000n;
/** Plus this many sequence numbers, for slow flows. */
const HEAD_SLACK_SEQ = 16n;
/** A ping of an unknown run asks the canary for its confirm again, at most this often. */
const REREGISTER_MS = 1000;
/** Outstanding clock-sync requests per canary (replies to others are unsolicited). */
const MAX_SYNC_OUTSTANDING = 16;

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
  /** The canary confirmed this run (else it is from an accepted canary, taken from its first ping). */
  confirmed: boolean;
  /** The flow's interval between pings, from its confirm or first ping. */
  intervalNs: bigint;
  /** Where the flow started: the first sequence number and when (our clock) it was set. */
  anchorSeq: bigint;
  anchorNs: bigint;
  tracker: SequenceTracker;
  /** plausibleHead() as of `headNs`: the head only grows with time, so a ping below it needs no new sum. */
  head: bigint;
  headNs: bigint;
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
/** What the coalminer knows of one canary it registered with or accepts. */
interface CanaryState {
  clock?: ClockSync;
  /** The run of its latest confirm. */
  confirmedRun?: bigint;
  /** Clock-sync requests awaiting a reply: seq -> t1. */
  syncs: Map<bigint, bigint>;
  lastRegisterMs: number;
  runs: number;
}

export class Coalminer {
  private readonly prefix: string;
  private readonly flows = new Map<string, Flow>();
  /** Only the canaries of `register` and `accept`: nothing on the channel adds to it. */
  private readonly known = new Map<string, CanaryState>();
  private readonly accepted: Set<string>;
  private readonly wallNs: () => bigint;
  private readonly abort = new AbortController();
  private readonly timers: NodeJS.Timeout[] = [];
  private started = false;
  private stopped = false;
  private syncSeq = 0n;
  /** Messages not taken, in all (see foreignByReason). */
  foreign = 0;
  readonly foreignByReason: Record<ForeignReason, number> = Object.fromEntries(
    FOREIGN_REASONS.map((r) => [r, 0]),
  ) as Record<ForeignReason, number>;
  evictedFlows = 0;
  /** Messages this process dropped because its subscription's buffer was full (it fell behind). */
  droppedLocally = 0;
  /** Pings whose one-way latency came out negative: the clock offset's bound was wrong (see ClockSync). */
  negativeLatency = 0;
  private readonly log: Logger;
  private readonly key: EnvelopeKey | undefined;

  constructor(private readonly opts: CoalminerOptions) {
    this.log = (opts.log ?? silentLogger).child({
      component: 'coalminer',
      coalminer: opts.name,
      transport: opts.transport.kind,
      ...(opts.region ? { region: opts.region } : {}),
    });
    this.prefix = opts.prefix ?? DEFAULT_PREFIX;
    this.wallNs = opts.wallNs ?? wallClockNs;
    this.key = opts.secret;
    this.accepted = new Set(opts.accept ?? []);
    for (const c of [...opts.register, ...this.accepted])
      this.known.set(c, { syncs: new Map(), lastRegisterMs: -Infinity, runs: 0 });
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
    if (reportsDrops(deliveries)) deliveries.onDrop = (d) => this.onLocalDrop(d);
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
          for (const c of this.opts.register) if (!this.isConfirmedBy(c)) this.register(c);
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
    for (const f of this.flows.values()) {
      const before = f.tracker.declaredLost;
      f.tracker.tick(now);
      if (f.tracker.declaredLost > before)
        this.opts.observer?.lost?.(f.canary, f.tracker.declaredLost - before);
      if (f.lastSeenMs + idle < now && f.tracker.counts().inFlight === 0) this.dropFlow(f);
    }
  }

  flowCount(): number {
    return this.flows.size;
  }

  /** The canaries this coalminer has live flows from (each once, however many runs). */
  flowCanaries(): string[] {
    return [...new Set([...this.flows.values()].map((f) => f.canary))];
  }

  /** Canaries this coalminer registers with or accepts: the only ones it takes pings from. */
  canaries(): string[] {
    return [...this.known.keys()];
  }

  clockEstimate(canary: string): ClockEstimate | undefined {
    return this.known.get(canary)?.clock?.estimate();
  }

  isConfirmedBy(canary: string): boolean {
    return this.known.get(canary)?.confirmedRun !== undefined;
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
    for (const c of this.opts.register) this.register(c);
  }

  private register(canary: string): void {
    const state = this.known.get(canary);
    if (state) state.lastRegisterMs = this.nowMs();
    void this.sendTo(canary, { type: 'register' });
  }

  private syncAll(): void {
    for (const c of this.opts.register) {
      const state = this.known.get(c)!;
      const t1 = this.wallNs();
      const seq = this.syncSeq++;
      // Requests whose replies never came are forgotten, oldest first.
      if (state.syncs.size >= MAX_SYNC_OUTSTANDING) state.syncs.delete(state.syncs.keys().next().value!);
      state.syncs.set(seq, t1);
      void this.sendTo(c, { type: 'clocksync', stamps: [t1], seq });
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
        encode(env, this.opts.transport.textOnly, this.key),
      );
    } catch {
      // Registration and sync are retried on their timers; a broker outage is reported by the transport.
    }
  }

  private async consume(deliveries: AsyncIterable<Delivery>): Promise<void> {
    try {
      // A transport's own queue is drained in batches (no promise per message); anything else iterated.
      if (deliveries instanceof DeliveryQueue)
        await (deliveries as DeliveryQueue<Delivery>).drain((d) => this.take(d));
      else for await (const d of deliveries) this.take(d);
    } catch (err) {
      // No ping can arrive any more: every flow will look like total loss.
      this.log.error('subscription ended', { err });
    }
  }

  private take(d: Delivery): void {
    try {
      this.onDelivery(d);
    } catch (err) {
      // A bug, not the message's fault: count it, say so now and then, and take the next one.
      this.refuse('error');
      this.logHandlerError(err);
    }
  }

  private lastHandlerErrorLogMs = -Infinity;

  private logHandlerError(err: unknown): void {
    const now = this.nowMs();
    if (now - this.lastHandlerErrorLogMs < 10_000) return;
    this.lastHandlerErrorLogMs = now;
    this.log.error('cannot handle a message; counted as foreign (reason error)', { err });
  }

  /**
   * A message the subscription's full buffer dropped before we read it. A ping of one of our flows is
   * marked dropped locally, so its flow never calls it lost; anything else is only counted.
   */
  private onLocalDrop(d: Delivery): void {
    this.droppedLocally++;
    let e: Envelope;
    try {
      e = decode(d.payload, this.key);
    } catch {
      return;
    }
    if (e.type !== 'ping' || e.coalminer !== this.opts.name) return;
    if (this.key !== undefined && e.signature !== 'valid') return;
    const f = this.findFlow(e.canary, e.runId);
    if (!f || e.intervalNs !== f.intervalNs || e.seq > this.plausibleHead(f, d.receivedNs)) return;
    const before = f.tracker.droppedLocally;
    f.tracker.noteDropped(Number(e.seq));
    // Beyond the head it is counted when the head reaches it (in onPing).
    if (f.tracker.droppedLocally > before)
      this.opts.observer?.droppedLocally?.(e.canary, f.tracker.droppedLocally - before);
  }

  private refuse(reason: ForeignReason): void {
    this.foreign++;
    this.foreignByReason[reason]++;
    this.opts.observer?.foreign?.(reason);
  }

  private onDelivery(d: Delivery): void {
    let e: Envelope;
    try {
      e = decode(d.payload, this.key);
    } catch (err) {
      if (!(err instanceof EnvelopeError)) throw err;
      this.refuse(err.fault === 'bad_signature' ? 'bad_signature' : 'undecodable');
      return;
    }
    if (e.coalminer !== this.opts.name) return this.refuse('other_coalminer');
    const canary = this.known.get(e.canary);
    if (!canary) return this.refuse('unknown_canary');
    if (this.key !== undefined && e.signature !== 'valid') return this.refuse('unsigned');
    switch (e.type) {
      case 'ping':
        return this.onPing(e, d, canary);
      case 'notice':
        return this.onNotice(e, d);
      case 'confirm':
        return this.onConfirm(e, d, canary);
      case 'clocksync-reply': {
        const [t1, t2, t3] = e.stamps ?? [];
        // Only a reply to a request of ours, once: anything else could skew the clock offset.
        if (t1 === undefined || t2 === undefined || t3 === undefined || canary.syncs.get(e.seq) !== t1)
          return this.refuse('unsolicited');
        canary.syncs.delete(e.seq);
        (canary.clock ??= new ClockSync()).add(t1, t2, t3, d.receivedNs);
        return;
      }
      default:
        return;
    }
  }

  /**
   * The canary's last word on a flow: its next sequence number (how far it got; 0 from a canary that
   * does not say) and the publishes that failed after its last ping.
   */
  private onNotice(e: Envelope, d: Delivery): void {
    const f = this.flows.get(flowKey(e.canary, e.runId));
    if (!f) return this.refuse('unknown_run');
    if (e.seq > this.plausibleHead(f, d.receivedNs) + 1n) return this.refuse('implausible');
    const reached = BigInt(f.tracker.highestSeq) + 1n;
    if (e.failed) this.noteFailed(f, e.failed, e.seq > reached ? e.seq : reached);
    if (e.seq > reached) {
      const lostBefore = f.tracker.declaredLost;
      f.tracker.reach(Number(e.seq), Number(d.receivedNs / 1_000_000n));
      if (f.tracker.declaredLost > lostBefore)
        this.opts.observer?.lost?.(e.canary, f.tracker.declaredLost - lostBefore);
    }
  }

  private onConfirm(e: Envelope, d: Delivery, canary: CanaryState): void {
    const key = flowKey(e.canary, e.runId);
    const existing = this.flows.get(key);
    if (existing) {
      // A renewal: the flow started at its first confirm, and stays there.
      existing.confirmed = true;
      canary.confirmedRun = e.runId;
      return;
    }
    const intervalNs = e.intervalNs ?? 0n;
    if (e.seq > BigInt(Number.MAX_SAFE_INTEGER) || intervalNs <= 0n) return this.refuse('implausible');
    if (canary.confirmedRun === undefined) this.log.info('registered with canary', { canary: e.canary });
    canary.confirmedRun = e.runId;
    const f = this.addFlow(e.canary, e.runId, true, intervalNs, e.seq, d.receivedNs);
    f.tracker.start(Number(e.seq));
  }

  private lastFlow: Flow | undefined;

  /** A live flow, or undefined; consecutive pings almost always belong to the same flow. */
  private findFlow(canary: string, runId: bigint): Flow | undefined {
    const last = this.lastFlow;
    if (last && last.runId === runId && last.canary === canary && this.flows.get(last.key) === last)
      return last;
    const f = this.flows.get(flowKey(canary, runId));
    if (f) this.lastFlow = f;
    return f;
  }

  private addFlow(
    canary: string,
    runId: bigint,
    confirmed: boolean,
    intervalNs: bigint,
    anchorSeq: bigint,
    anchorNs: bigint,
  ): Flow {
    const state = this.known.get(canary)!;
    const max = this.opts.maxRunsPerCanary ?? 4;
    if (state.runs >= max) this.evictRun(canary);
    const key = flowKey(canary, runId);
    const f: Flow = {
      key,
      canary,
      runId,
      confirmed,
      intervalNs,
      anchorSeq,
      anchorNs,
      tracker: new SequenceTracker(this.opts.sequence),
      head: -1n,
      headNs: 0n,
      all: new LatencyHistogram(),
      allFromSent: new LatencyHistogram(),
      rolling: new RollingHistogram(),
      interval: new LatencyHistogram(),
      lastSeenMs: this.nowMs(),
    };
    this.flows.set(key, f);
    state.runs++;
    this.lastFlow = f;
    return f;
  }

  /**
   * Makes room for a new run of a canary: an unconfirmed run goes before a confirmed one, a run that never
   * received a ping before one that did, then the least recently active. So runs made up on the channel
   * evict each other, never a flow that is receiving.
   */
  private evictRun(canary: string): void {
    let victim: Flow | undefined;
    const rank = (f: Flow) => [f.confirmed ? 1 : 0, f.tracker.counts().received > 0 ? 1 : 0, f.lastSeenMs];
    for (const f of this.flows.values()) {
      if (f.canary !== canary) continue;
      if (!victim || lexLess(rank(f), rank(victim))) victim = f;
    }
    if (victim) this.dropFlow(victim);
    this.evictedFlows++;
  }

  private dropFlow(f: Flow): void {
    this.flows.delete(f.key);
    const state = this.known.get(f.canary);
    if (state) state.runs--;
    if (this.lastFlow === f) this.lastFlow = undefined;
  }

  /** Whether the flow's rate explains `seq` by our time `nowNs` (plausibleHead, remembered). */
  private isPlausible(f: Flow, seq: bigint, nowNs: bigint): boolean {
    if (seq <= f.head && nowNs >= f.headNs) return true;
    const head = this.plausibleHead(f, nowNs);
    if (nowNs > f.headNs) [f.head, f.headNs] = [head, nowNs];
    return seq <= head;
  }

  /** The highest sequence number the flow's rate explains by our time `nowNs`. */
  private plausibleHead(f: Flow, nowNs: bigint): bigint {
    const elapsed = nowNs > f.anchorNs ? nowNs - f.anchorNs : 0n;
    // 0.1 % for the two clocks' rates, then the slack for bursts and a late confirm.
    return f.anchorSeq + (elapsed + elapsed / 1000n + HEAD_SLACK_NS) / f.intervalNs + HEAD_SLACK_SEQ;
  }

  /**
   * Takes the canary's word on failed publishes below `below`: a ping announces earlier sequence numbers
   * only, and a notice (the canary's last word) news of what this coalminer has reached.
   */
  private noteFailed(f: Flow, failed: [bigint, bigint][], below: bigint): void {
    const ranges: [number, number][] = [];
    for (const [a, b] of failed) {
      if (a >= below) {
        this.refuse('implausible');
        return;
      }
      ranges.push([Number(a < f.anchorSeq ? f.anchorSeq : a), Number(b >= below ? below - 1n : b)]);
    }
    const tracker = f.tracker;
    const before = tracker.sendFailedArrived;
    tracker.noteFailed(ranges);
    // News of failures for pings that had already arrived: in-doubt publishes that got through.
    if (tracker.sendFailedArrived > before)
      this.opts.observer?.sendFailedArrived?.(f.canary, tracker.sendFailedArrived - before);
  }

  private onPing(e: Envelope, d: Delivery, canary: CanaryState): void {
    let f = this.findFlow(e.canary, e.runId);
    if (!f) {
      if (!this.accepted.has(e.canary)) {
        // Perhaps the canary restarted and its confirm is yet to come: ask for it, now and then.
        if (this.opts.register.includes(e.canary) && this.nowMs() - canary.lastRegisterMs >= REREGISTER_MS)
          this.register(e.canary);
        return this.refuse('unknown_run');
      }
      const intervalNs = e.intervalNs ?? 0n;
      if (e.seq > BigInt(Number.MAX_SAFE_INTEGER) || intervalNs <= 0n) return this.refuse('implausible');
      f = this.addFlow(e.canary, e.runId, false, intervalNs, e.seq, d.receivedNs);
    }
    // A head the flow's rate cannot explain (or another rate) is not this flow's: its state is kept.
    if (e.intervalNs !== f.intervalNs || !this.isPlausible(f, e.seq, d.receivedNs))
      return this.refuse('implausible');
    const nowMs = Number(d.receivedNs / 1_000_000n);
    f.lastSeenMs = nowMs;
    if (e.failed) this.noteFailed(f, e.failed, e.seq);
    const inDoubtBefore = f.tracker.sendFailedArrived;
    const lostBefore = f.tracker.declaredLost;
    const droppedBefore = f.tracker.droppedLocally;
    const arrival = f.tracker.observe(Number(e.seq), nowMs);
    if (f.tracker.droppedLocally !== droppedBefore)
      this.opts.observer?.droppedLocally?.(e.canary, f.tracker.droppedLocally - droppedBefore);
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
    const est = this.opts.correctClock === false ? undefined : canary.clock?.estimate();
    const clock = est && Math.abs(est.offsetNs) > est.errorNs ? est : undefined;
    // Differences first: wall-clock ns do not fit a double exactly, their differences do.
    const offset = clock?.offsetNs ?? 0;
    const fromIntended = Number(d.receivedNs - e.intendedNs) + offset;
    const fromSent = Number(d.receivedNs - e.sentNs) + offset;
    // Arrived before it was sent: the clocks are further apart than the offset's bound says. The
    // histograms keep it at 0; how often it happens is said, not hidden.
    if (fromSent < 0) {
      this.negativeLatency++;
      this.opts.observer?.negativeLatency?.(e.canary);
    }
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

function flowKey(canary: string, runId: bigint): string {
  return `${canary}\u0000${runId}`;
}

function lexLess(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

/** Everything a flow recorded from the intended send time: the sampled intervals plus the current one. */
function wholeFlow(f: Flow): LatencyHistogram {
  const h = new LatencyHistogram();
  h.merge(f.all);
  h.merge(f.interval);
  return h;
}
