import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, type Logger } from '../core/log.js';
import { backoffMs, wallClockNs } from '../transports/base.js';
import {
  TransportError,
  type Delivery,
  type Transport,
  type TransportStatus,
} from '../transports/transport.js';
import { AllowList } from './allow-list.js';
import { canaryChannel, coalminerChannel, DEFAULT_PREFIX } from './channels.js';
import {
  decode,
  encode,
  encodeBinary,
  encodedSize,
  EnvelopeError,
  resign,
  signedMacOffset,
  textLine,
  type Envelope,
  type EnvelopeKey,
} from './envelope.js';
import type { CanaryObserver } from './observer.js';
import { addRange, type Range } from './ranges.js';

export interface CanaryOptions {
  name: string;
  transport: Transport;
  prefix?: string;
  /** Pings per second to each coalminer, from 1/60 to 100,000. Default 1. */
  ratePerSecond?: number;
  /** Pad each ping to this many bytes (before the text encoding on text transports). */
  sizeBytes?: number;
  /** Ask coalminers to echo each ping back, for round-trip time on one clock. */
  echo?: boolean;
  /**
   * A coalminer that has not renewed its registration for this long stops being pinged. Default 30 s.
   * Leases do not run out while the transport is not connected; after it reconnects, every coalminer has
   * a full lease to register again from when the control channel is heard again (at most a minute later).
   */
  leaseMs?: number;
  /** Coalminers to ping without waiting for them to register: always pinged, whatever `allow` says. */
  coalminers?: string[];
  /**
   * Most coalminers pinged at once, the static ones included; registrations beyond it are refused and
   * counted (`refused().limit`). Default 100.
   */
  maxCoalminers?: number;
  /**
   * Coalminers that may register: names, or globs where `*` is any run of characters and `?` one
   * (`eu-*`). Unset: any name may, within maxCoalminers (unless `isSigned` is given: then only signed
   * registrations). A registration that `isSigned` accepts needs no entry here.
   */
  allow?: string[];
  /**
   * Whether a registration carries a valid signature of the shared secret (envelope.ts's HMAC, checked
   * by decode). Given, it makes signed registrations pass `allow` and unsigned ones need an entry in it.
   */
  isSigned?: (e: Envelope) => boolean;
  /**
   * A secret shared with the coalminers: every message is signed with it, and a control message that is
   * not signed with it is refused unless `allow` names its coalminer (a coalminer not given the secret
   * yet). Implies `isSigned` (a valid signature).
   */
  secret?: EnvelopeKey;
  /** Publishes awaiting the transport at once; beyond it a ping is a send error ('backpressure'). */
  maxOutstanding?: number;
  /**
   * Pings this late (the process stalled) are not sent but counted as attempted and failed ('stalled'), so
   * no burst of stale pings goes out. Default 5 s. Until then they are behind schedule (stats().behind),
   * which shows at once.
   */
  maxLagMs?: number;
  /** How long failed publishes are announced to the coalminer in later pings. Default 60 s. */
  failedRetentionMs?: number;
  wallNs?: () => bigint;
  observer?: CanaryObserver;
  /** Its lines carry component `canary`, `canary` (the name) and `transport` (the kind). */
  log?: Logger;
}

/** Why a registration was refused: the keys of refused(). */
export type RefusalReason =
  /** maxCoalminers are pinged already. */
  | 'limit'
  /** `allow` is set and neither names the coalminer nor matches it, and the registration is not signed. */
  | 'not_allowed'
  /** Registrations must be signed (`isSigned` is given, `allow` is not) and this one is not. */
  | 'unsigned'
  /** Signed, but not with the shared secret. */
  | 'bad_signature'
  /** No coalminer name. */
  | 'invalid';

/**
 * The key in stats() of the summed counts of coalminers retired so long ago that their own entries were
 * pruned. Parentheses are not allowed in names, so it is never a coalminer's.
 */
export const PRUNED = '(pruned)';

/** Where a control message goes: a flow, or a coalminer without one (a clock sync reply). */
interface Peer {
  coalminer: string;
  channel: string;
  runId: bigint;
}

interface Flow extends Peer {
  /**
   * Random per flow: each time the canary starts pinging a coalminer (again), seq restarts at 0 under a
   * new run id, so the coalminer never takes the new pings for repeats of the old ones.
   */
  runId: bigint;
  /** This flow's ping, encoded once; each ping copies it, patches seq and times (and signs it again). */
  template?: { bytes: Uint8Array; seqOffset: number; macOffset: number };
  nextSeq: number;
  nextIntendedNs: bigint;
  leaseExpiresMs: number;
  failed: Range[];
  /** This flow's publishes awaiting the transport. */
  publishing: number;
  retired: boolean;
  /** Set when the flow retires or the canary stops: its schedule ends here and its counts are in `stats`. */
  endNs?: bigint;
  /** Of the pings due in this flow, how many the observer has been told of (`due`). */
  dueReported: number;
  stats: FlowStats;
}

export interface FlowStats {
  /**
   * Pings whose intended send time has passed (up to the end of each flow): due = attempted + behind at
   * every moment.
   */
  due: number;
  /** Pings due but never attempted (yet, or ever: the canary fell behind its schedule and stopped). */
  behind: number;
  /**
   * How far behind schedule the canary is with this coalminer, in seconds: now minus the intended time of
   * the next ping not yet attempted, while the flow runs; at its end (retired or stopped), as it was then.
   */
  behindSeconds: number;
  /** Pings published or skipped as send errors: sent + failed + pending. */
  attempted: number;
  sent: number;
  failed: number;
  pending: number;
  errors: Record<string, number>;
  /** The run id (hex) of the coalminer's current or last flow; '' in the PRUNED aggregate. */
  runId: string;
  /** Flows these counts add up: pinging a coalminer again after it unregistered or its lease ran out starts one. */
  runs: number;
}

/** The block that pings' bytes are cut from (see Canary.slabFor). */
interface Slab {
  bytes: Uint8Array;
  view: DataView;
  used: number;
}
const SLAB_BYTES = 64 * 1024;

/** Pings sent per turn of the event loop; then the loop yields so publishes settle and I/O runs. */
const CHUNK = 1000;
export const MAX_RATE = 1_000_000;
const DEFAULT_MAX_COALMINERS = 100;
/**
 * After a reconnect, leases are held until the canary hears its control channel again (its own probe, or
 * any message), but no longer than this: far longer than a subscription takes to come back (a Kafka
 * consumer rejoining its group takes about 10 s), and a bound on transports that never deliver the
 * canary's own messages back to it (IRC), where only a coalminer's renewal is heard.
 */
const MAX_LEASE_HOLD_MS = 60_000;
/** Failed ranges per notice: what the envelope carries (a u8 count). */
const MAX_FAILED_PER_NOTICE = 255;
/** How long a flow's last word is published again while its publish fails. */
const LAST_WORD_RETRY_MS = 10_000;
/** At most one line per this long for each kind of trouble a stranger can cause (refusals, bad messages). */
const LOG_EVERY_MS = 10_000;

/**
 * Sends sequenced, timestamped pings to every registered coalminer at a fixed rate, open loop: the
 * intended send time of ping k is start + k x interval whatever happened to ping k-1, so a stalled sender
 * shows up as latency (coordinated omission is measured, not hidden).
 *
 * Anyone who can publish on its control channel can register, so what a registration can cost is bounded:
 * at most maxCoalminers flows, only names `allow` admits (or signed registrations), stats of at most
 * maxCoalminers retired coalminers (older ones summed), and no message can stop the control loop.
 */
export class Canary {
  private readonly prefix: string;
  private readonly intervalNs: bigint;
  private readonly leaseMs: number;
  private readonly maxCoalminers: number;
  private readonly allow: AllowList | undefined;
  private readonly staticCoalminers: Set<string>;
  private readonly flows = new Map<string, Flow>();
  /** Stats of coalminers no longer pinged, least recently retired first; at most maxCoalminers. */
  private readonly retired = new Map<string, FlowStats>();
  private readonly pruned: FlowStats = emptyStats(0);
  private readonly refusals: Record<string, number> = {};
  private readonly wallNs: () => bigint;
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private outstanding = 0;
  private drained: (() => void) | undefined;
  private started = false;
  private stopped = false;
  /** stop() gave up waiting for publishes: a flow's last one to settle sends its last word again. */
  private lateWord = false;
  /** The transport was seen not connected: leases are held. */
  private linkDown = false;
  /** Since the transport came back: leases are held until the control channel is heard, or this time (ms). */
  private holdUntilMs: number | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  /** The run id of the probes this canary sends itself to learn that its control channel works again. */
  private readonly probeId = newRunId();
  private paddingBase = 0;
  private slab: Slab | undefined;
  /** Control-channel trouble by kind: foreign (does not decode), exception, subscription, transport codes. */
  readonly controlErrors: Record<string, number> = {};
  private readonly log: Logger;
  private readonly refusalLog = new LogLimiter(LOG_EVERY_MS);
  private readonly errorLog = new LogLimiter(LOG_EVERY_MS);
  private readonly key: EnvelopeKey | undefined;
  private readonly isSigned: ((e: Envelope) => boolean) | undefined;

  constructor(private readonly opts: CanaryOptions) {
    this.log = (opts.log ?? silentLogger).child({
      component: 'canary',
      canary: opts.name,
      transport: opts.transport.kind,
    });
    this.prefix = opts.prefix ?? DEFAULT_PREFIX;
    const rate = opts.ratePerSecond ?? 1;
    if (!(rate >= 1 / 60 && rate <= MAX_RATE))
      throw new RangeError(`rate must be between 1/60 and ${MAX_RATE} per second (got ${rate})`);
    this.intervalNs = BigInt(Math.round(1e9 / rate));
    this.leaseMs = opts.leaseMs ?? 30_000;
    this.maxCoalminers = opts.maxCoalminers ?? DEFAULT_MAX_COALMINERS;
    if (!(Number.isInteger(this.maxCoalminers) && this.maxCoalminers >= 1))
      throw new RangeError(`maxCoalminers must be a whole number from 1 (got ${this.maxCoalminers})`);
    this.allow = opts.allow ? new AllowList(opts.allow) : undefined;
    this.staticCoalminers = new Set(opts.coalminers ?? []);
    this.wallNs = opts.wallNs ?? wallClockNs;
    this.key = opts.secret;
    this.isSigned = opts.isSigned ?? (opts.secret !== undefined ? (e) => e.signature === 'valid' : undefined);
    // Read when metrics are collected, so falling behind shows at once, between ticks or before the stall rule.
    opts.observer?.watch?.(() => this.stats());
  }

  get name(): string {
    return this.opts.name;
  }

  coalminers(): string[] {
    return [...this.flows.keys()];
  }

  /**
   * Per coalminer: due, attempted, behind schedule, sent, failed (by reason) and pending publishes over all
   * its flows, retired ones included; coalminers retired longest ago are summed under PRUNED, so the totals
   * stay exact. A copy as of now: due and behind of a running flow grow with the clock between ticks.
   */
  stats(): Map<string, FlowStats> {
    const out = new Map<string, FlowStats>();
    if (this.pruned.runs > 0) out.set(PRUNED, copyStats(this.pruned));
    for (const [k, s] of this.retired) out.set(k, copyStats(s));
    const now = this.wallNs();
    for (const [k, f] of this.flows) out.set(k, this.flowStats(f, now));
    return out;
  }

  /** Pings of a flow due but not yet attempted at `now`, and how far behind its schedule is (ns). */
  private lag(flow: Flow, now: bigint): { behind: number; behindNs: bigint } {
    const at = flow.endNs ?? now;
    if (flow.nextIntendedNs > at) return { behind: 0, behindNs: 0n };
    const behindNs = at - flow.nextIntendedNs;
    return { behind: Number(behindNs / this.intervalNs) + 1, behindNs };
  }

  /** A live flow's counts as of `now`: what retired runs left in `stats`, plus this run's schedule. */
  private flowStats(flow: Flow, now: bigint): FlowStats {
    const s = copyStats(flow.stats);
    if (flow.endNs !== undefined) return s;
    const { behind, behindNs } = this.lag(flow, now);
    s.due += flow.nextSeq + behind;
    s.behind += behind;
    s.behindSeconds = Number(behindNs) / 1e9;
    return s;
  }

  /**
   * Ends a flow's schedule at `now`: the pings due by then that were never attempted stay behind schedule
   * for good (they are after the flow's last sequence number, so the coalminer never expects them).
   */
  private endSchedule(flow: Flow, now: bigint): void {
    if (flow.endNs !== undefined) return;
    const { behind, behindNs } = this.lag(flow, now);
    flow.endNs = now;
    flow.stats.due += flow.nextSeq + behind;
    flow.stats.behind += behind;
    flow.stats.behindSeconds = Number(behindNs) / 1e9;
    this.reportDue(flow, flow.nextSeq + behind);
  }

  /** Tells the observer of the pings of `flow` that fell due since it last did. */
  private reportDue(flow: Flow, due: number): void {
    if (due <= flow.dueReported) return;
    this.opts.observer?.due?.(flow.coalminer, due - flow.dueReported);
    flow.dueReported = due;
  }

  /** Registrations refused so far, by reason (RefusalReason); a refused coalminer asks again every second. */
  refused(): Record<string, number> {
    return { ...this.refusals };
  }

  /** Subscribes to the control channel and starts pinging the static coalminers. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    // Subscribed before anything else, so a registration sent right after start() is heard.
    void this.consume(this.subscribeControl());
    void this.watchLink();
    this.paddingBase = encodedSize(this.ping(this.newFlow('x'.repeat(16), 0, emptyStats(0)), 0n, 0n));
    for (const c of this.staticCoalminers) this.addFlow(c, Infinity);
    this.schedule();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    // The pings that fell due since the last tick (a timer fires late by a millisecond or more) go out
    // rather than being counted behind schedule; what is left after one chunk is.
    // The same instant for both: read again after the chunk, a ping that fell due while it went out
    // would count behind schedule though the canary kept up.
    const now = this.wallNs();
    if (this.started) this.tick(now);
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.probeTimer);
    for (const f of this.flows.values()) this.endSchedule(f, now);
    this.abort.abort();
    if (this.outstanding > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => (this.drained = r)),
        new Promise((r) => (timer = setTimeout(r, 5000))),
      ]);
      clearTimeout(timer);
    }
    // Publishes still waiting now (a transport whose own timeout is longer than the wait) announce their
    // outcome when the flow's last one settles, as a retired flow's do: else their failures would be lost.
    this.lateWord = true;
    await Promise.all([...this.flows.values()].map((f) => this.announceFailed(f)));
  }

  private nowMs(): number {
    return Number(this.wallNs() / 1_000_000n);
  }

  private newFlow(coalminer: string, leaseExpiresMs: number, stats: FlowStats): Flow {
    return {
      coalminer,
      channel: coalminerChannel(this.prefix, coalminer),
      runId: newRunId(),
      nextSeq: 0,
      nextIntendedNs: this.wallNs(),
      leaseExpiresMs,
      failed: [],
      publishing: 0,
      retired: false,
      dueReported: 0,
      stats,
    };
  }

  private addFlow(coalminer: string, leaseExpiresMs: number): Flow {
    // A coalminer pinged before adds to its counts; its new flow is a new run.
    let stats = this.retired.get(coalminer);
    this.retired.delete(coalminer);
    if (stats) stats.runs++;
    else stats = emptyStats(1);
    const flow = this.newFlow(coalminer, leaseExpiresMs, stats);
    stats.runId = flow.runId.toString(16);
    this.flows.set(coalminer, flow);
    return flow;
  }

  private subscribeControl(): AsyncIterable<Delivery> {
    return this.opts.transport.subscribe(canaryChannel(this.prefix, this.opts.name), this.abort.signal);
  }

  /**
   * The control loop. No message ends it: whatever handling one throws is counted and logged, and the
   * next is handled as usual. A subscription that fails is made again, with backoff, until stop().
   */
  private async consume(first: AsyncIterable<Delivery>): Promise<void> {
    let deliveries: AsyncIterable<Delivery> | undefined = first;
    let attempt = 0;
    while (!this.stopped) {
      try {
        deliveries ??= this.subscribeControl();
        for await (const d of deliveries) {
          attempt = 0;
          this.handle(d);
        }
        // Ended without an error: stop(), or the transport closed and nothing more can come.
        if (!this.stopped) this.log.warn('control subscription ended; registrations are no longer heard');
        return;
      } catch (err) {
        deliveries = undefined;
        if (this.stopped) return;
        this.controlError('subscription');
        const retryInMs = backoffMs(attempt++, 500, 30_000);
        this.log.error('control subscription failed; subscribing again', { err, retryInMs });
        await sleep(retryInMs, undefined, { signal: this.abort.signal }).catch(() => undefined);
      }
    }
  }

  private handle(d: Delivery): void {
    // Whatever arrives, registrations can be heard again.
    if (this.holdUntilMs !== undefined) this.resumeLeases();
    try {
      this.onControl(d);
    } catch (err) {
      // A bug, or a message nobody foresaw: it costs this message, never the loop.
      this.controlError('exception');
      this.errorLog.run(this.nowMs(), (suppressed) =>
        this.log.error('control message not handled', { err, suppressed }),
      );
    }
  }

  private controlError(kind: string): void {
    this.controlErrors[kind] = (this.controlErrors[kind] ?? 0) + 1;
    this.opts.observer?.controlError?.(kind);
  }

  private onControl(d: Delivery): void {
    let e: Envelope;
    try {
      e = decode(d.payload, this.key);
    } catch (err) {
      if (!(err instanceof EnvelopeError)) throw err;
      if (err.fault === 'bad_signature') this.controlError('bad_signature');
      else this.controlError('foreign');
      return;
    }
    if (e.canary !== this.opts.name) return;
    if (e.type === 'register') return this.onRegister(e);
    // With a secret, nobody else can end a flow or draw clock replies: only allowed names may go unsigned.
    if (this.key !== undefined && e.signature !== 'valid' && this.allow?.allows(e.coalminer) !== true) {
      this.controlError('unsigned');
      return;
    }
    switch (e.type) {
      case 'unregister': {
        const flow = this.flows.get(e.coalminer);
        if (flow) this.retire(flow, 'unregistered');
        return;
      }
      case 'clocksync': {
        const t1 = e.stamps?.[0];
        if (t1 === undefined) return;
        // Answered for coalminers that are pinged or may register, so a forged request for any name
        // makes the canary publish nothing to it.
        const flow = this.flows.get(e.coalminer);
        if (!flow && this.acceptRegistration(e, true) !== undefined) return;
        const to = flow ?? {
          coalminer: e.coalminer,
          channel: coalminerChannel(this.prefix, e.coalminer),
          runId: 0n,
        };
        void this.send(to, {
          type: 'clocksync-reply',
          stamps: [t1, d.receivedNs, this.wallNs()],
          seq: e.seq,
        });
        return;
      }
      case 'echo': {
        const flow = this.flows.get(e.coalminer);
        if (!flow || e.runId !== flow.runId) return;
        this.opts.observer?.rtt?.(e.coalminer, Number(d.receivedNs - e.sentNs) / 1e9);
        return;
      }
      default:
        return;
    }
  }

  private onRegister(e: Envelope): void {
    let flow = this.flows.get(e.coalminer);
    const isStatic = this.staticCoalminers.has(e.coalminer);
    if (!isStatic) {
      const refusal = this.acceptRegistration(e, flow !== undefined);
      if (refusal) return this.refuse(e.coalminer, refusal);
    }
    if (!flow) {
      flow = this.addFlow(e.coalminer, isStatic ? Infinity : this.nowMs() + this.leaseMs);
      this.log.info('coalminer registered', { coalminer: e.coalminer, runId: flow.stats.runId });
    } else if (flow.leaseExpiresMs !== Infinity) {
      flow.leaseExpiresMs = this.nowMs() + this.leaseMs;
    }
    void this.send(flow, { type: 'confirm', seq: BigInt(flow.nextSeq) });
    this.schedule();
  }

  /**
   * Whether a registration (a renewal, or a new flow) may be taken, or why not. A registration that
   * `isSigned` vouches for (the shared secret's HMAC) passes `allow`; the limit holds for every one.
   */
  private acceptRegistration(e: Envelope, renewal: boolean): RefusalReason | undefined {
    if (e.coalminer === '') return 'invalid';
    if (this.isSigned?.(e) !== true) {
      if (this.allow) {
        if (!this.allow.allows(e.coalminer)) return 'not_allowed';
      } else if (this.isSigned) {
        return 'unsigned';
      }
    }
    if (!renewal && this.flows.size >= this.maxCoalminers) return 'limit';
    return undefined;
  }

  private refuse(coalminer: string, reason: RefusalReason): void {
    this.refusals[reason] = (this.refusals[reason] ?? 0) + 1;
    this.opts.observer?.refused?.(reason);
    this.refusalLog.run(this.nowMs(), (suppressed) =>
      this.log.warn('registration refused', { coalminer, reason, suppressed }),
    );
  }

  /** Follows the transport's connection state, so that leases do not run out while it is down. */
  private async watchLink(): Promise<void> {
    try {
      // Ends when the transport closes; after stop(), at its next change of state.
      for await (const s of this.opts.transport.status()) {
        if (this.stopped) return;
        this.noteLink(s.type);
      }
    } catch (err) {
      this.log.warn('transport state not followed; leases see it only when pinging', { err });
    }
  }

  private noteLink(state: TransportStatus['type']): void {
    if (state !== 'connected') {
      this.linkDown = true;
      this.holdUntilMs = undefined;
      clearTimeout(this.probeTimer);
      return;
    }
    if (!this.linkDown) return;
    this.linkDown = false;
    // Connected is not yet subscribed again (a Kafka consumer rejoins its group after the connection, a
    // Redis client resubscribes): leases stay held until something arrives on the control channel (this
    // canary's own probe, if nothing else), and then run in full from there.
    this.holdUntilMs = this.nowMs() + MAX_LEASE_HOLD_MS;
    this.probe();
  }

  /** A message to this canary's own control channel: when it arrives, registrations can be heard. */
  private probe(): void {
    if (this.stopped || this.holdUntilMs === undefined) return;
    const self = { coalminer: '', channel: canaryChannel(this.prefix, this.opts.name), runId: this.probeId };
    void this.send(self, { type: 'notice' });
    // Again until heard: on a pub/sub system one published before the subscription is back is lost.
    this.probeTimer = setTimeout(() => this.probe(), 500);
  }

  /** No renewal could be heard for a while: every coalminer gets a full lease from now (it renews every lease/3). */
  private resumeLeases(): void {
    this.holdUntilMs = undefined;
    clearTimeout(this.probeTimer);
    const until = this.nowMs() + this.leaseMs;
    for (const f of this.flows.values()) if (f.leaseExpiresMs < until) f.leaseExpiresMs = until;
  }

  /** Whether leases are held now: the transport is down, or back but its control channel not yet heard. */
  private leasesHeld(nowMs: number): boolean {
    if (this.linkDown) return true;
    if (this.holdUntilMs === undefined) return false;
    if (nowMs < this.holdUntilMs) return true;
    // Nothing heard for so long (a transport that does not deliver our own messages to us): go on.
    this.resumeLeases();
    return false;
  }

  private retire(flow: Flow, reason: 'unregistered' | 'lease expired'): void {
    this.flows.delete(flow.coalminer);
    this.endSchedule(flow, this.wallNs());
    flow.retired = true;
    this.retired.set(flow.coalminer, flow.stats);
    if (flow.publishing === 0) void this.announceFailed(flow);
    this.prune();
    // A coalminer that said goodbye is routine; one that went silent is worth a look.
    const fields = { coalminer: flow.coalminer, runId: flow.runId.toString(16), reason };
    if (reason === 'unregistered') this.log.info('stopped pinging coalminer', fields);
    else this.log.warn('stopped pinging coalminer', fields);
  }

  /** Keeps the stats of the last maxCoalminers retired coalminers; older ones are summed into PRUNED. */
  private prune(): void {
    for (const [coalminer, s] of this.retired) {
      if (this.retired.size <= this.maxCoalminers) return;
      // Its publishes still settle into it: folded once they have.
      if (s.pending > 0) continue;
      addStats(this.pruned, s);
      this.retired.delete(coalminer);
      this.opts.observer?.pruned?.(coalminer);
    }
  }

  /**
   * The flow's last word (on stop, or when it ends): how far it got (`seq`, the next sequence number, so
   * pings the coalminer never saw are not forgotten) and every failed publish still within the retention
   * time, which pings announce only the latest of (or the coalminer would count the rest as lost): in
   * notices of at most MAX_FAILED_PER_NOTICE ranges, oldest first. The coalminer takes each piece of news
   * once, so repeats cost nothing.
   *
   * Without it the coalminer cannot account for the pings after the last one that arrived, so a notice
   * whose publish fails is published again (an overloaded transport rejects or times out control messages
   * like pings), for at most LAST_WORD_RETRY_MS; the returned promise settles when all are out or given up.
   */
  private announceFailed(flow: Flow): Promise<void> {
    if (flow.nextSeq === 0) return Promise.resolve();
    const ranges = flow.failed.map((r): [bigint, bigint] => [BigInt(r.a), BigInt(r.b)]);
    const notices: (Partial<Envelope> & Pick<Envelope, 'type'>)[] = [];
    for (let i = 0; i < ranges.length || notices.length === 0; i += MAX_FAILED_PER_NOTICE) {
      const failed = ranges.slice(i, i + MAX_FAILED_PER_NOTICE);
      notices.push({ type: 'notice', seq: BigInt(flow.nextSeq), ...(failed.length > 0 ? { failed } : {}) });
    }
    const deadline = Date.now() + LAST_WORD_RETRY_MS;
    return Promise.all(notices.map((n) => this.sendUntilOut(flow, n, deadline))).then(() => undefined);
  }

  /** send(), again with backoff while it fails, until `deadline` (ms) or the transport is closed. */
  private async sendUntilOut(
    to: Peer,
    fields: Partial<Envelope> & Pick<Envelope, 'type'>,
    deadline: number,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const code = await this.send(to, fields);
      if (code === undefined || code === 'closed' || code === 'too_large') return;
      const waitMs = Math.min(backoffMs(attempt, 50, 1000), deadline - Date.now());
      if (waitMs <= 0) return;
      await sleep(waitMs);
    }
  }

  /**
   * A control message (not a ping) to a coalminer; failures are counted, not as ping errors. Resolves with
   * the failure's code, or undefined once published.
   */
  private send(to: Peer, fields: Partial<Envelope> & Pick<Envelope, 'type'>): Promise<string | undefined> {
    const now = this.wallNs();
    const env: Envelope = {
      canary: this.opts.name,
      coalminer: to.coalminer,
      runId: to.runId,
      seq: 0n,
      intendedNs: now,
      sentNs: now,
      intervalNs: this.intervalNs,
      ...fields,
    };
    return this.opts.transport.publish(to.channel, encode(env, this.opts.transport.textOnly, this.key)).then(
      () => undefined,
      (err: unknown) => {
        const code = err instanceof TransportError ? err.code : 'error';
        this.controlError(code);
        return code;
      },
    );
  }

  private ping(flow: Flow, seq: bigint, intendedNs: bigint): Envelope {
    // Failures are announced for as many pings as fit in the retention time, then forgotten.
    const keep = Math.ceil(((this.opts.failedRetentionMs ?? 60_000) * 1e6) / Number(this.intervalNs));
    while (flow.failed.length > 0 && flow.failed[0]!.b < Number(seq) - keep) flow.failed.shift();
    const e: Envelope = {
      type: 'ping',
      canary: this.opts.name,
      coalminer: flow.coalminer,
      runId: flow.runId,
      seq,
      intendedNs,
      sentNs: intendedNs,
      intervalNs: this.intervalNs,
    };
    if (this.opts.echo) e.echo = true;
    if (flow.failed.length > 0) e.failed = flow.failed.slice(-32).map((r) => [BigInt(r.a), BigInt(r.b)]);
    return e;
  }

  private schedule(): void {
    if (this.stopped || !this.started) return;
    clearTimeout(this.timer);
    let next: bigint | undefined;
    for (const f of this.flows.values())
      if (next === undefined || f.nextIntendedNs < next) next = f.nextIntendedNs;
    if (next === undefined) return;
    const delayMs = Math.max(0, Number(next - this.wallNs()) / 1e6);
    this.timer = setTimeout(() => this.tick(), Math.floor(delayMs));
  }

  private tick(now = this.wallNs()): void {
    const nowMs = Number(now / 1_000_000n);
    const maxLagNs = BigInt(Math.round((this.opts.maxLagMs ?? 5000) * 1e6));
    // The status stream may not have told us yet.
    this.noteLink(this.opts.transport.state);
    const held = this.leasesHeld(nowMs);
    let budget = CHUNK;
    let more = false;
    for (const flow of [...this.flows.values()]) {
      if (!held && flow.leaseExpiresMs < nowMs) {
        this.retire(flow, 'lease expired');
        continue;
      }
      // A stalled process does not fire a burst of stale pings: those slots are send errors.
      if (now - flow.nextIntendedNs > maxLagNs) {
        const skip = Number((now - flow.nextIntendedNs) / this.intervalNs);
        flow.stats.attempted += skip;
        this.recordFailure(flow, flow.nextSeq, flow.nextSeq + skip - 1, 'stalled', skip);
        flow.nextSeq += skip;
        flow.nextIntendedNs += BigInt(skip) * this.intervalNs;
      }
      while (flow.nextIntendedNs <= now && budget > 0) {
        this.sendPing(flow, flow.nextSeq, flow.nextIntendedNs);
        flow.nextSeq++;
        flow.nextIntendedNs += this.intervalNs;
        budget--;
      }
      if (flow.nextIntendedNs <= now) more = true;
      this.reportDue(flow, flow.nextSeq + this.lag(flow, now).behind);
    }
    if (more && !this.stopped) {
      // Behind schedule: carry on right after pending I/O, not after a timer's millisecond.
      clearTimeout(this.timer);
      this.timer = undefined;
      setImmediate(() => {
        if (!this.stopped && this.timer === undefined) this.tick();
      });
      return;
    }
    this.schedule();
  }

  /** The ping's bytes: a copy of the flow's template with seq and times patched in (the common case). */
  private encodePing(flow: Flow, seq: number, intendedNs: bigint, sentNs: bigint): Uint8Array {
    const textOnly = this.opts.transport.textOnly;
    if (flow.failed.length > 0) {
      const env = this.ping(flow, BigInt(seq), intendedNs);
      const size = this.opts.sizeBytes ?? 0;
      if (size > this.paddingBase) env.padding = size - this.paddingBase;
      env.sentNs = sentNs;
      return encode(env, textOnly, this.key);
    }
    if (!flow.template) {
      const env = this.ping(flow, 0n, 0n);
      const size = this.opts.sizeBytes ?? 0;
      if (size > this.paddingBase) env.padding = size - this.paddingBase;
      const bytes = encodeBinary(env, this.key);
      // magic(2) version type flags, then the two names with their length bytes, then runId.
      const seqOffset = 5 + 1 + bytes[5]! + 1 + bytes[6 + bytes[5]!]! + 8;
      flow.template = { bytes, seqOffset, macOffset: signedMacOffset(bytes, env.padding ?? 0) };
    }
    const { bytes: template, seqOffset, macOffset } = flow.template;
    const slab = this.slabFor(template.length);
    const at = slab.used;
    slab.used += template.length;
    slab.bytes.set(template, at);
    const view = slab.view;
    // seq < 2^53 (a safe integer): its two 32-bit halves, without a BigInt per ping.
    view.setUint32(at + seqOffset, Math.floor(seq / 4_294_967_296));
    view.setUint32(at + seqOffset + 4, seq >>> 0);
    view.setBigInt64(at + seqOffset + 8, intendedNs);
    view.setBigInt64(at + seqOffset + 16, sentNs);
    const bytes = slab.bytes.subarray(at, at + template.length);
    if (this.key !== undefined) resign(bytes, macOffset, this.key);
    return textOnly ? textLine(bytes) : bytes;
  }

  /**
   * Where the next ping's bytes go: consecutive slices of a 64 KiB block, a new block when this one is
   * full. A block is never written twice (each ping keeps its own bytes for as long as the transport holds
   * them), it only saves an allocation per ping; it is freed when its last ping is.
   */
  private slabFor(size: number): Slab {
    if (this.slab === undefined || this.slab.used + size > this.slab.bytes.length) {
      // A Buffer (every byte is written before it is read): its slices are Buffers too, which a
      // transport handing bytes to a Node client (ioredis) sends as they are, without a view of its own.
      const bytes = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, size));
      this.slab = { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), used: 0 };
    }
    return this.slab;
  }

  private sendPing(flow: Flow, seq: number, intendedNs: bigint): void {
    const stats = flow.stats;
    stats.attempted++;
    if (this.outstanding >= (this.opts.maxOutstanding ?? 10_000)) {
      this.recordFailure(flow, seq, seq, 'backpressure', 1);
      return;
    }
    const sentNs = this.wallNs();
    let payload: Uint8Array;
    try {
      payload = this.encodePing(flow, seq, intendedNs, sentNs);
    } catch (err) {
      this.recordFailure(flow, seq, seq, 'encode', 1);
      this.log.error('cannot encode ping', { coalminer: flow.coalminer, err });
      return;
    }
    this.outstanding++;
    flow.publishing++;
    stats.pending++;
    this.opts.transport.publish(flow.channel, payload).then(
      (receipt) => {
        stats.sent++;
        this.settled(flow);
        this.opts.observer?.sent?.(flow.coalminer);
        if (receipt.ackNs !== undefined)
          this.opts.observer?.publishAck?.(flow.coalminer, Number(receipt.ackNs - sentNs) / 1e9);
      },
      (err: unknown) => {
        const reason = err instanceof TransportError ? err.code : 'error';
        this.recordFailure(flow, seq, seq, reason, 1);
        this.settled(flow);
      },
    );
  }

  /** A ping's publish has its outcome (counted by the caller). */
  private settled(flow: Flow): void {
    this.outstanding--;
    flow.publishing--;
    flow.stats.pending--;
    if (this.outstanding === 0) this.drained?.();
    if ((flow.retired || this.lateWord) && flow.publishing === 0) {
      // The flow's last word, now that every outcome is known.
      void this.announceFailed(flow);
      this.prune();
    }
  }

  private recordFailure(flow: Flow, a: number, b: number, reason: string, count: number): void {
    if (count <= 0) return;
    flow.stats.failed += count;
    flow.stats.errors[reason] = (flow.stats.errors[reason] ?? 0) + count;
    this.opts.observer?.sendError?.(flow.coalminer, reason, count);
    // Merged: an outage is one range however long it lasts.
    addRange(flow.failed, a, b);
  }
}

function emptyStats(runs: number): FlowStats {
  return {
    due: 0,
    behind: 0,
    behindSeconds: 0,
    attempted: 0,
    sent: 0,
    failed: 0,
    pending: 0,
    errors: {},
    runId: '',
    runs,
  };
}

function copyStats(s: FlowStats): FlowStats {
  return { ...s, errors: { ...s.errors } };
}

function addStats(into: FlowStats, s: FlowStats): void {
  into.due += s.due;
  into.behind += s.behind;
  into.behindSeconds = Math.max(into.behindSeconds, s.behindSeconds);
  into.attempted += s.attempted;
  into.sent += s.sent;
  into.failed += s.failed;
  into.pending += s.pending;
  into.runs += s.runs;
  for (const [k, n] of Object.entries(s.errors)) into.errors[k] = (into.errors[k] ?? 0) + n;
}

/** A random 64-bit run id; never 0, which coalminers use in their own messages. */
function newRunId(): bigint {
  for (;;) {
    const id = randomBytes(8).readBigUInt64BE();
    if (id !== 0n) return id;
  }
}

/** At most one line per `everyMs`; each line says how many were held back since the previous one. */
class LogLimiter {
  private nextMs = -Infinity;
  private held = 0;

  constructor(private readonly everyMs: number) {}

  run(nowMs: number, write: (suppressed: number) => void): void {
    if (nowMs < this.nextMs) {
      this.held++;
      return;
    }
    this.nextMs = nowMs + this.everyMs;
    const held = this.held;
    this.held = 0;
    write(held);
  }
}
