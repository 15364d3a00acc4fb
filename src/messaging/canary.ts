import { randomBytes } from 'node:crypto';
import { silentLogger, type Logger } from '../core/log.js';
import { wallClockNs } from '../transports/base.js';
import { TransportError, type Delivery, type Transport } from '../transports/transport.js';
import { canaryChannel, coalminerChannel, DEFAULT_PREFIX } from './channels.js';
import {
  decode,
  encode,
  encodeBinary,
  encodedSize,
  EnvelopeError,
  textLine,
  type Envelope,
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
  /** A coalminer that has not renewed its registration for this long stops being pinged. Default 30 s. */
  leaseMs?: number;
  /** Coalminers to ping without waiting for them to register. */
  coalminers?: string[];
  /** Publishes awaiting the transport at once; beyond it a ping is a send error ('backpressure'). */
  maxOutstanding?: number;
  /** Pings this late (the process stalled) are not sent but counted as send errors ('stalled'). Default 5 s. */
  maxLagMs?: number;
  /** How long failed publishes are announced to the coalminer in later pings. Default 60 s. */
  failedRetentionMs?: number;
  wallNs?: () => bigint;
  observer?: CanaryObserver;
  /** Its lines carry component `canary`, `canary` (the name) and `transport` (the kind). */
  log?: Logger;
}

interface Flow {
  coalminer: string;
  channel: string;
  /** This flow's ping, encoded once; each ping copies it and patches seq and times. */
  template?: { bytes: Uint8Array; seqOffset: number };
  nextSeq: number;
  nextIntendedNs: bigint;
  leaseExpiresMs: number;
  failed: Range[];
  stats: FlowStats;
}

export interface FlowStats {
  attempted: number;
  sent: number;
  failed: number;
  pending: number;
  errors: Record<string, number>;
}

/** Pings sent per turn of the event loop; then the loop yields so publishes settle and I/O runs. */
const CHUNK = 1000;
export const MAX_RATE = 1_000_000;

/**
 * Sends sequenced, timestamped pings to every registered coalminer at a fixed rate, open loop: the
 * intended send time of ping k is start + k x interval whatever happened to ping k-1, so a stalled sender
 * shows up as latency (coordinated omission is measured, not hidden).
 */
export class Canary {
  readonly runId: bigint = randomBytes(8).readBigUInt64BE();
  private readonly prefix: string;
  private readonly intervalNs: bigint;
  private readonly flows = new Map<string, Flow>();
  private readonly retired = new Map<string, FlowStats>();
  private readonly wallNs: () => bigint;
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private outstanding = 0;
  private started = false;
  private stopped = false;
  private paddingBase = 0;
  readonly controlErrors: Record<string, number> = {};
  private readonly log: Logger;

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
    this.wallNs = opts.wallNs ?? wallClockNs;
  }

  get name(): string {
    return this.opts.name;
  }

  coalminers(): string[] {
    return [...this.flows.keys()];
  }

  /** Per coalminer: attempted, sent, failed (by reason) and pending publishes; retired flows included. */
  stats(): Map<string, FlowStats> {
    const out = new Map(this.retired);
    for (const [k, f] of this.flows) out.set(k, f.stats);
    return out;
  }

  /** Subscribes to the control channel and starts pinging the static coalminers. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const control = this.opts.transport.subscribe(
      canaryChannel(this.prefix, this.opts.name),
      this.abort.signal,
    );
    void this.consume(control);
    this.paddingBase = encodedSize(this.ping(this.flowFor('x'.repeat(16), 0), 0n, 0n));
    for (const c of this.opts.coalminers ?? []) this.addFlow(c, Infinity);
    this.schedule();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort.abort();
    const deadline = Date.now() + 5000;
    while (this.outstanding > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    // Publishes that failed after the last ping (an ack that timed out) were never announced in a ping:
    // say so once more, or the coalminer would count them as lost.
    await Promise.all(
      [...this.flows.values()]
        .filter((f) => f.failed.length > 0)
        .map((f) =>
          this.send(f, {
            type: 'notice',
            failed: f.failed.slice(-255).map((r) => [BigInt(r.a), BigInt(r.b)]),
          }),
        ),
    );
  }

  private flowFor(coalminer: string, leaseExpiresMs: number): Flow {
    return {
      coalminer,
      channel: coalminerChannel(this.prefix, coalminer),
      nextSeq: 0,
      nextIntendedNs: this.wallNs(),
      leaseExpiresMs,
      failed: [],
      stats: { attempted: 0, sent: 0, failed: 0, pending: 0, errors: {} },
    };
  }

  private addFlow(coalminer: string, leaseExpiresMs: number): Flow {
    const flow = this.flowFor(coalminer, leaseExpiresMs);
    this.flows.set(coalminer, flow);
    this.retired.delete(coalminer);
    return flow;
  }

  private async consume(deliveries: AsyncIterable<Delivery>): Promise<void> {
    try {
      for await (const d of deliveries) this.onControl(d);
    } catch (err) {
      // Registrations can no longer be heard: coalminers that register from now on are never pinged.
      this.log.error('control subscription ended', { err });
    }
  }

  private onControl(d: Delivery): void {
    let e: Envelope;
    try {
      e = decode(d.payload);
    } catch (err) {
      if (!(err instanceof EnvelopeError)) throw err;
      this.controlErrors.foreign = (this.controlErrors.foreign ?? 0) + 1;
      return;
    }
    if (e.canary !== this.opts.name) return;
    const nowMs = Number(this.wallNs() / 1_000_000n);
    const leaseMs = this.opts.leaseMs ?? 30_000;
    switch (e.type) {
      case 'register': {
        let flow = this.flows.get(e.coalminer);
        if (!flow) {
          flow = this.addFlow(e.coalminer, nowMs + leaseMs);
          this.log.info('coalminer registered', { coalminer: e.coalminer });
        } else if (flow.leaseExpiresMs !== Infinity) {
          flow.leaseExpiresMs = nowMs + leaseMs;
        }
        void this.send(flow, { type: 'confirm', seq: BigInt(flow.nextSeq) });
        this.schedule();
        return;
      }
      case 'unregister': {
        const flow = this.flows.get(e.coalminer);
        if (flow) this.retire(flow, 'unregistered');
        return;
      }
      case 'clocksync': {
        const flow = this.flows.get(e.coalminer) ?? this.flowFor(e.coalminer, 0);
        const t1 = e.stamps?.[0];
        if (t1 === undefined) return;
        void this.send(flow, {
          type: 'clocksync-reply',
          stamps: [t1, d.receivedNs, this.wallNs()],
          seq: e.seq,
        });
        return;
      }
      case 'echo': {
        if (e.runId !== this.runId) return;
        this.opts.observer?.rtt?.(e.coalminer, Number(d.receivedNs - e.sentNs) / 1e9);
        return;
      }
      default:
        return;
    }
  }

  private retire(flow: Flow, reason: 'unregistered' | 'lease expired'): void {
    this.flows.delete(flow.coalminer);
    this.retired.set(flow.coalminer, flow.stats);
    // A coalminer that said goodbye is routine; one that went silent is worth a look.
    const fields = { coalminer: flow.coalminer, reason };
    if (reason === 'unregistered') this.log.info('stopped pinging coalminer', fields);
    else this.log.warn('stopped pinging coalminer', fields);
  }

  /** A control message (not a ping) to a coalminer; failures are logged, not counted as ping errors. */
  private send(flow: Flow, fields: Partial<Envelope> & Pick<Envelope, 'type'>): Promise<void> {
    const now = this.wallNs();
    const env: Envelope = {
      canary: this.opts.name,
      coalminer: flow.coalminer,
      runId: this.runId,
      seq: 0n,
      intendedNs: now,
      sentNs: now,
      intervalNs: this.intervalNs,
      ...fields,
    };
    return this.opts.transport.publish(flow.channel, encode(env, this.opts.transport.textOnly)).then(
      () => undefined,
      (err: unknown) => {
        const code = err instanceof TransportError ? err.code : 'error';
        this.controlErrors[code] = (this.controlErrors[code] ?? 0) + 1;
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
      runId: this.runId,
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

  private tick(): void {
    const now = this.wallNs();
    const nowMs = Number(now / 1_000_000n);
    const maxLagNs = BigInt(Math.round((this.opts.maxLagMs ?? 5000) * 1e6));
    let budget = CHUNK;
    let more = false;
    for (const flow of [...this.flows.values()]) {
      if (flow.leaseExpiresMs < nowMs) {
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
      return encode(env, textOnly);
    }
    if (!flow.template) {
      const env = this.ping(flow, 0n, 0n);
      const size = this.opts.sizeBytes ?? 0;
      if (size > this.paddingBase) env.padding = size - this.paddingBase;
      const bytes = encodeBinary(env);
      // magic(2) version type flags, then the two names with their length bytes, then runId.
      const seqOffset = 5 + 1 + bytes[5]! + 1 + bytes[6 + bytes[5]!]! + 8;
      flow.template = { bytes, seqOffset };
    }
    const { bytes: template, seqOffset } = flow.template;
    const bytes = template.slice();
    const view = new DataView(bytes.buffer);
    view.setBigUint64(seqOffset, BigInt(seq));
    view.setBigInt64(seqOffset + 8, intendedNs);
    view.setBigInt64(seqOffset + 16, sentNs);
    return textOnly ? textLine(bytes) : bytes;
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
    stats.pending++;
    this.opts.transport.publish(flow.channel, payload).then(
      (receipt) => {
        this.outstanding--;
        stats.pending--;
        stats.sent++;
        this.opts.observer?.sent?.(flow.coalminer);
        if (receipt.ackNs !== undefined)
          this.opts.observer?.publishAck?.(flow.coalminer, Number(receipt.ackNs - sentNs) / 1e9);
      },
      (err: unknown) => {
        this.outstanding--;
        stats.pending--;
        const reason = err instanceof TransportError ? err.code : 'error';
        this.recordFailure(flow, seq, seq, reason, 1);
      },
    );
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
