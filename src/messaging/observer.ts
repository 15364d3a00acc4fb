import type { Transport } from '../transports/transport.js';
import type { FlowStats } from './canary.js';
import type { Coalminer, ForeignReason } from './coalminer.js';
import type { Arrival } from './sequence.js';

/** What the canary and coalminer report as they work; a metrics sink implements it. All optional. */
export interface CanaryObserver {
  /** Pings to `coalminer` that fell due (their intended send time passed) since the last call. */
  due?(coalminer: string, count: number): void;
  /**
   * Called once by the canary with a reader of its per-coalminer stats (canary.ts FlowStats: due, behind,
   * behindSeconds, ...), for gauges read when metrics are collected.
   */
  watch?(read: () => Map<string, FlowStats>): void;
  sent?(coalminer: string): void;
  sendError?(coalminer: string, reason: string, count: number): void;
  publishAck?(coalminer: string, seconds: number): void;
  rtt?(coalminer: string, seconds: number): void;
  /** A registration refused (canary.ts RefusalReason: limit, not_allowed, unsigned, bad_signature, invalid). */
  refused?(reason: string): void;
  /** Trouble on the control channel: foreign, unsigned, bad_signature, exception, subscription, or a publish error code. */
  controlError?(kind: string): void;
  /**
   * A retired coalminer's counts were folded into the aggregate of pruned ones (the canary's PRUNED
   * stats) and it is never reported on again unless it registers anew: a sink drops its label sets.
   */
  pruned?(coalminer: string): void;
}

/**
 * Whether an arrival counts the ping as received: each sequence number once, whether it came in order,
 * after a later one (reordered) or after it had been declared lost (late). Duplicates and stale copies
 * do not. Every sink counts received pings by this rule.
 */
export function countsAsReceived(kind: Arrival): boolean {
  return kind === 'new' || kind === 'reordered' || kind === 'late';
}

export interface CoalminerObserver {
  /** One-way latency of a ping, from its intended and its actual send time, clock-corrected. */
  latency?(canary: string, fromIntendedSeconds: number, fromSentSeconds: number): void;
  /** A message on the coalminer's channel that was not taken as one of its pings, and why. */
  foreign?(reason: ForeignReason): void;
  /**
   * Where the broker stamps messages (Kafka, Redis streams, JetStream, the relay): the two legs of the
   * trip, canary to broker and broker to coalminer. Uncorrected for the broker's clock.
   */
  hops?(canary: string, toBrokerSeconds: number, fromBrokerSeconds: number): void;
  /** How a ping arrived: new, reordered, duplicate, late (after being declared lost) or stale. */
  arrival?(canary: string, kind: Arrival): void;
  /** Pings newly declared lost. */
  lost?(canary: string, count: number): void;
  /** Pings the canary said it failed to publish that arrived anyway (an in-doubt publish). */
  sendFailedArrived?(canary: string, count: number): void;
  /** A ping that reached this process but that its full subscription buffer dropped (not broker loss). */
  droppedLocally?(canary: string, count: number): void;
  /** A ping whose one-way latency came out negative: the clocks are further apart than the bound said. */
  negativeLatency?(canary: string): void;
}

/**
 * What the agent's messaging runtime feeds a metrics sink: observers for each canary and coalminer, and
 * the coalminers and transports it may read when it collects (in flight, clock offsets, connection state).
 */
export interface MessagingSink {
  canaryObserver(canary: string, transport: string): CanaryObserver;
  coalminerObserver(coalminer: string, transport: string, region: string): CoalminerObserver;
  watchCoalminer(c: Coalminer, transport: string, region: string): void;
  watchTransport(t: Transport): void;
}

/** Calls both functions, or is the one that exists. Observer methods take at most three arguments. */
function both<F extends (...a: never[]) => void>(f: F | undefined, g: F | undefined): F | undefined {
  if (!f || !g) return f ?? g;
  // Positional parameters rather than a rest array: this runs for every ping.
  type Three = (p?: unknown, q?: unknown, r?: unknown) => void;
  const x = f as unknown as Three;
  const y = g as unknown as Three;
  return ((p?: unknown, q?: unknown, r?: unknown) => {
    x(p, q, r);
    y(p, q, r);
  }) as unknown as F;
}

/** Two sinks fed as one: every observation goes to both, `a` first. */
export function teeMessagingSinks(a: MessagingSink, b: MessagingSink): MessagingSink {
  return {
    canaryObserver(canary, transport) {
      const x = a.canaryObserver(canary, transport);
      const y = b.canaryObserver(canary, transport);
      return {
        due: both(x.due, y.due),
        watch: both(x.watch, y.watch),
        sent: both(x.sent, y.sent),
        sendError: both(x.sendError, y.sendError),
        publishAck: both(x.publishAck, y.publishAck),
        rtt: both(x.rtt, y.rtt),
        pruned: both(x.pruned, y.pruned),
        refused: both(x.refused, y.refused),
        controlError: both(x.controlError, y.controlError),
      };
    },
    coalminerObserver(coalminer, transport, region) {
      const x = a.coalminerObserver(coalminer, transport, region);
      const y = b.coalminerObserver(coalminer, transport, region);
      return {
        latency: both(x.latency, y.latency),
        foreign: both(x.foreign, y.foreign),
        hops: both(x.hops, y.hops),
        arrival: both(x.arrival, y.arrival),
        lost: both(x.lost, y.lost),
        sendFailedArrived: both(x.sendFailedArrived, y.sendFailedArrived),
        droppedLocally: both(x.droppedLocally, y.droppedLocally),
        negativeLatency: both(x.negativeLatency, y.negativeLatency),
      };
    },
    watchCoalminer(c, transport, region) {
      a.watchCoalminer(c, transport, region);
      b.watchCoalminer(c, transport, region);
    },
    watchTransport(t) {
      a.watchTransport(t);
      b.watchTransport(t);
    },
  };
}

/** One observer that tells both: for feeding metrics and alerting from the same coalminer. */
export function teeCoalminerObserver(a: CoalminerObserver, b: CoalminerObserver): CoalminerObserver {
  return {
    latency: both(a.latency, b.latency),
    foreign: both(a.foreign, b.foreign),
    hops: both(a.hops, b.hops),
    arrival: both(a.arrival, b.arrival),
    lost: both(a.lost, b.lost),
    sendFailedArrived: both(a.sendFailedArrived, b.sendFailedArrived),
    droppedLocally: both(a.droppedLocally, b.droppedLocally),
    negativeLatency: both(a.negativeLatency, b.negativeLatency),
  };
}
