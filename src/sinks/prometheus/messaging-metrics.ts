import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { FOREIGN_REASONS, type Coalminer, type ForeignReason } from '../../messaging/coalminer.js';
import { PRUNED, type FlowStats } from '../../messaging/canary.js';
import { countsAsReceived, type CanaryObserver, type CoalminerObserver } from '../../messaging/observer.js';
import type { Transport } from '../../transports/transport.js';

type FlowLabels = 'canary' | 'coalminer' | 'transport' | 'region';

/**
 * Prometheus metrics of canaries, coalminers and transports, fed by their observers (per message, with
 * cached label children) and by collect-time reads (in flight, clock offsets, transport state).
 */
export class MessagingMetrics {
  private readonly latency: Histogram<FlowLabels | 'from'>;
  private readonly hops: Histogram<FlowLabels | 'segment'>;
  private readonly received: Counter<FlowLabels>;
  private readonly lost: Counter<FlowLabels>;
  private readonly sendFailedArrived: Counter<FlowLabels>;
  private readonly droppedLocally: Counter<FlowLabels>;
  private readonly negativeLatency: Counter<FlowLabels>;
  private readonly duplicated: Counter<FlowLabels>;
  private readonly reordered: Counter<FlowLabels>;
  private readonly late: Counter<FlowLabels>;
  private readonly stale: Counter<FlowLabels>;
  private readonly foreign: Counter<'coalminer' | 'transport' | 'reason'>;
  private readonly due: Counter<'canary' | 'coalminer' | 'transport'>;
  private readonly sent: Counter<'canary' | 'coalminer' | 'transport'>;
  private readonly sendErrors: Counter<'canary' | 'coalminer' | 'transport' | 'reason'>;
  private readonly refused: Counter<'canary' | 'transport' | 'reason'>;
  private readonly controlErrors: Counter<'canary' | 'transport' | 'kind'>;
  private readonly ack: Histogram<'canary' | 'transport'>;
  private readonly rtt: Histogram<'canary' | 'coalminer' | 'transport'>;
  private readonly up: Gauge<'transport' | 'url'>;
  private readonly reconnects: Counter<'transport' | 'url'>;
  private readonly coalminers = new Set<{ c: Coalminer; transport: string; region: string }>();
  /** Each canary's stats reader (CanaryObserver.watch), for the behind-schedule gauges. */
  private readonly canaries = new Set<{
    canary: string;
    transport: string;
    read: () => Map<string, FlowStats>;
  }>();

  constructor(registry: Registry, buckets: number[]) {
    const registers = [registry];
    const flow = ['canary', 'coalminer', 'transport', 'region'] as const;
    this.latency = new Histogram({
      name: 'coalmine_message_latency_seconds',
      help: 'One-way latency of canary pings, clock-corrected, measured from the intended send time (from="intended", coordinated-omission corrected) and from the actual send time (from="sent")',
      labelNames: [...flow, 'from'],
      buckets,
      registers,
    });
    this.hops = new Histogram({
      name: 'coalmine_message_hop_latency_seconds',
      help: 'The legs of a ping through a broker that stamps messages: segment="to_broker" (canary to broker) and segment="from_broker" (broker to coalminer); on the broker clock, uncorrected',
      labelNames: [...flow, 'segment'],
      buckets,
      registers,
    });
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames: flow, registers });
    this.received = counter('coalmine_messages_received_total', 'Pings received, each sequence number once');
    this.lost = counter(
      'coalmine_messages_lost_total',
      'Pings declared lost (after the reorder window or loss timeout); coalmine_messages_late_total of them arrived later',
    );
    this.droppedLocally = counter(
      'coalmine_messages_dropped_locally_total',
      "Pings that reached the coalminer but that its own subscription buffer dropped (it fell behind): the coalminer's loss, not the broker's, never counted in coalmine_messages_lost_total",
    );
    this.negativeLatency = counter(
      'coalmine_message_negative_latency_total',
      'Pings that arrived before they were sent by the corrected clocks: the clock offset was off by more than its bound (the latency is recorded as 0)',
    );
    this.duplicated = counter(
      'coalmine_messages_duplicated_total',
      'Pings received more than once (extra copies)',
    );
    this.reordered = counter(
      'coalmine_messages_reordered_total',
      'Pings received after a later sequence number',
    );
    this.late = counter('coalmine_messages_late_total', 'Pings received after they had been declared lost');
    this.sendFailedArrived = counter(
      'coalmine_messages_send_failed_arrived_total',
      'Pings the canary reported as failed to publish that arrived anyway (counted received): publishes whose outcome was in doubt, such as a connection lost before the broker replied',
    );
    this.stale = counter(
      'coalmine_messages_stale_total',
      'Pings too old to judge (before the flow started or beyond the history window)',
    );
    this.foreign = new Counter({
      name: 'coalmine_messages_foreign_total',
      help: 'Messages on a coalminer channel not taken as its pings, by reason (undecodable, other_coalminer, unknown_canary, unknown_run, implausible, unsolicited, unsigned, bad_signature, error), ignored',
      labelNames: ['coalminer', 'transport', 'reason'],
      registers,
    });
    this.due = new Counter({
      name: 'coalmine_messages_due_total',
      help: 'Pings whose intended send time passed: attempted (sent, send errors, pending) plus behind schedule',
      labelNames: ['canary', 'coalminer', 'transport'],
      registers,
    });
    const canaries = this.canaries;
    /** Every watched canary's coalminers (not the pruned aggregate, whose own series were removed). */
    function* flowStats() {
      for (const { canary, transport, read } of canaries)
        for (const [coalminer, s] of read())
          if (coalminer !== PRUNED) yield [{ canary, coalminer, transport }, s] as const;
    }
    new Gauge({
      name: 'coalmine_messages_behind_schedule',
      help: 'Pings due but not attempted: the canary fell behind its schedule (due - attempted); at the end of a flow, the ones never sent',
      labelNames: ['canary', 'coalminer', 'transport'],
      registers,
      collect() {
        this.reset();
        for (const [l, s] of flowStats()) this.set(l, s.behind);
      },
    });
    new Gauge({
      name: 'coalmine_canary_behind_schedule_seconds',
      help: 'How far the canary is behind its schedule: now minus the intended send time of the next ping not yet attempted (0 when on time)',
      labelNames: ['canary', 'coalminer', 'transport'],
      registers,
      collect() {
        this.reset();
        for (const [l, s] of flowStats()) this.set(l, s.behindSeconds);
      },
    });
    this.sent = new Counter({
      name: 'coalmine_messages_sent_total',
      help: 'Pings the transport accepted (acknowledged where it acknowledges)',
      labelNames: ['canary', 'coalminer', 'transport'],
      registers,
    });
    this.sendErrors = new Counter({
      name: 'coalmine_message_send_errors_total',
      help: 'Pings that could not be published, by reason',
      labelNames: ['canary', 'coalminer', 'transport', 'reason'],
      registers,
    });
    this.refused = new Counter({
      name: 'coalmine_canary_registrations_refused_total',
      help: 'Registrations a canary refused, by reason: limit (maxCoalminers pinged already), not_allowed (not in allow), unsigned, bad_signature, invalid',
      labelNames: ['canary', 'transport', 'reason'],
      registers,
    });
    this.controlErrors = new Counter({
      name: 'coalmine_canary_control_errors_total',
      help: 'Trouble on a canary control channel, by kind: foreign (does not decode), unsigned, bad_signature, exception (a message whose handling failed), subscription (resubscribed), or the error code of a failed control publish',
      labelNames: ['canary', 'transport', 'kind'],
      registers,
    });
    this.ack = new Histogram({
      name: 'coalmine_publish_ack_seconds',
      help: 'Time from publishing a ping to the broker acknowledging it (confirms, acks, PubAck, PUBACK)',
      labelNames: ['canary', 'transport'],
      buckets,
      registers,
    });
    this.rtt = new Histogram({
      name: 'coalmine_message_rtt_seconds',
      help: 'Round-trip time of echoed pings, on the canary clock',
      labelNames: ['canary', 'coalminer', 'transport'],
      buckets,
      registers,
    });
    const coalminers = this.coalminers;
    new Gauge({
      name: 'coalmine_messages_in_flight',
      help: 'Pings missing but not yet judged lost (within the reorder window and loss timeout)',
      labelNames: flow,
      registers,
      collect() {
        this.reset();
        for (const { c, transport, region } of coalminers) {
          for (const [canary, n] of c.inFlight())
            this.set({ canary, coalminer: c.name, transport, region }, n);
        }
      },
    });
    new Gauge({
      name: 'coalmine_clock_offset_seconds',
      help: 'Estimated canary clock minus coalminer clock (NTP-style, min-RTT filter); one-way latency is corrected by it',
      labelNames: ['canary', 'coalminer'],
      registers,
      collect() {
        this.reset();
        for (const { c } of coalminers)
          for (const canary of c.canaries()) {
            const est = c.clockEstimate(canary);
            if (est) this.set({ canary, coalminer: c.name }, est.offsetNs / 1e9);
          }
      },
    });
    new Gauge({
      name: 'coalmine_clock_offset_error_seconds',
      help: 'Bound on the error of coalmine_clock_offset_seconds (half the best sync round trip)',
      labelNames: ['canary', 'coalminer'],
      registers,
      collect() {
        this.reset();
        for (const { c } of coalminers)
          for (const canary of c.canaries()) {
            const est = c.clockEstimate(canary);
            if (est) this.set({ canary, coalminer: c.name }, est.errorNs / 1e9);
          }
      },
    });
    new Gauge({
      name: 'coalmine_flows',
      help: 'Flows (canary runs) a coalminer is tracking',
      labelNames: ['coalminer'],
      registers,
      collect() {
        this.reset();
        for (const { c } of coalminers) this.set({ coalminer: c.name }, c.flowCount());
      },
    });
    new Gauge({
      name: 'coalmine_flows_evicted',
      help: 'Flows a coalminer dropped because it was tracking its maximum number of flows (cumulative)',
      labelNames: ['coalminer'],
      registers,
      collect() {
        this.reset();
        for (const { c } of coalminers) this.set({ coalminer: c.name }, c.evictedFlows);
      },
    });
    this.up = new Gauge({
      name: 'coalmine_transport_up',
      help: 'Whether the transport is connected (1) or not (0)',
      labelNames: ['transport', 'url'],
      registers,
    });
    this.reconnects = new Counter({
      name: 'coalmine_transport_reconnects_total',
      help: 'Times the transport connected again after losing its connection',
      labelNames: ['transport', 'url'],
      registers,
    });
  }

  canaryObserver(canary: string, transport: string): CanaryObserver {
    const sent = new Map<string, Counter.Internal>();
    const child = (coalminer: string) => {
      let c = sent.get(coalminer);
      if (!c) sent.set(coalminer, (c = this.sent.labels({ canary, coalminer, transport })));
      return c;
    };
    const ack = this.ack.labels({ canary, transport });
    /** The send-error reasons seen per coalminer, so its label sets can all be dropped when it is pruned. */
    const reasons = new Map<string, Set<string>>();
    return {
      due: (coalminer, count) => this.due.inc({ canary, coalminer, transport }, count),
      watch: (read) => void this.canaries.add({ canary, transport, read }),
      sent: (coalminer) => child(coalminer).inc(),
      sendError: (coalminer, reason, count) => {
        let seen = reasons.get(coalminer);
        if (!seen) reasons.set(coalminer, (seen = new Set()));
        seen.add(reason);
        this.sendErrors.inc({ canary, coalminer, transport, reason }, count);
      },
      publishAck: (_coalminer, seconds) => ack.observe(seconds),
      rtt: (coalminer, seconds) => this.rtt.observe({ canary, coalminer, transport }, seconds),
      refused: (reason) => this.refused.inc({ canary, transport, reason }),
      controlError: (kind) => this.controlErrors.inc({ canary, transport, kind }),
      pruned: (coalminer) => {
        // Its counts live on in the canary's pruned aggregate; its own series end here, so a stream of
        // made-up names registering and leaving cannot grow /metrics.
        const l = { canary, coalminer, transport };
        this.sent.remove(l);
        this.due.remove(l);
        this.rtt.remove(l);
        for (const reason of reasons.get(coalminer) ?? []) this.sendErrors.remove({ ...l, reason });
        sent.delete(coalminer);
        reasons.delete(coalminer);
      },
    };
  }

  coalminerObserver(coalminer: string, transport: string, region: string): CoalminerObserver {
    type Children = Record<
      'fromIntended' | 'fromSent' | 'toBroker' | 'fromBroker',
      Histogram.Internal<string>
    > &
      Record<
        | 'received'
        | 'reordered'
        | 'duplicate'
        | 'late'
        | 'stale'
        | 'lost'
        | 'sendFailedArrived'
        | 'droppedLocally'
        | 'negativeLatency',
        Counter.Internal
      >;
    const byCanary = new Map<string, Children>();
    const children = (canary: string): Children => {
      let c = byCanary.get(canary);
      if (!c) {
        const l = { canary, coalminer, transport, region };
        c = {
          fromIntended: this.latency.labels({ ...l, from: 'intended' }),
          fromSent: this.latency.labels({ ...l, from: 'sent' }),
          toBroker: this.hops.labels({ ...l, segment: 'to_broker' }),
          fromBroker: this.hops.labels({ ...l, segment: 'from_broker' }),
          received: this.received.labels(l),
          reordered: this.reordered.labels(l),
          duplicate: this.duplicated.labels(l),
          late: this.late.labels(l),
          stale: this.stale.labels(l),
          lost: this.lost.labels(l),
          sendFailedArrived: this.sendFailedArrived.labels(l),
          droppedLocally: this.droppedLocally.labels(l),
          negativeLatency: this.negativeLatency.labels(l),
        };
        byCanary.set(canary, c);
      }
      return c;
    };
    const foreign = Object.fromEntries(
      FOREIGN_REASONS.map((reason) => [reason, this.foreign.labels({ coalminer, transport, reason })]),
    ) as Record<ForeignReason, { inc(): void }>;
    return {
      latency: (canary, fromIntended, fromSent) => {
        const c = children(canary);
        c.fromIntended.observe(Math.max(0, fromIntended));
        c.fromSent.observe(Math.max(0, fromSent));
      },
      arrival: (canary, kind) => {
        const c = children(canary);
        if (countsAsReceived(kind)) c.received.inc();
        if (kind !== 'new') c[kind].inc();
      },
      lost: (canary, n) => children(canary).lost.inc(n),
      sendFailedArrived: (canary, n) => children(canary).sendFailedArrived.inc(n),
      droppedLocally: (canary, n) => {
        // A second copy arriving after a drop takes one back; a counter only counts drops.
        if (n > 0) children(canary).droppedLocally.inc(n);
      },
      negativeLatency: (canary) => children(canary).negativeLatency.inc(),
      hops: (canary, toBroker, fromBroker) => {
        const c = children(canary);
        c.toBroker.observe(Math.max(0, toBroker));
        c.fromBroker.observe(Math.max(0, fromBroker));
      },
      foreign: (reason) => foreign[reason].inc(),
    };
  }

  watchCoalminer(c: Coalminer, transport: string, region: string): void {
    this.coalminers.add({ c, transport, region });
  }

  /** Follows a transport's status stream until it closes. */
  watchTransport(t: Transport): void {
    const labels = { transport: t.kind, url: t.displayUrl };
    this.up.set(labels, t.state === 'connected' ? 1 : 0);
    void (async () => {
      let wasConnected = t.state === 'connected';
      for await (const s of t.status()) {
        this.up.set(labels, s.type === 'connected' ? 1 : 0);
        if (s.type === 'connected' && !wasConnected && this.everConnected.has(t)) this.reconnects.inc(labels);
        if (s.type === 'connected') this.everConnected.add(t);
        wasConnected = s.type === 'connected';
      }
    })();
  }

  private readonly everConnected = new WeakSet<Transport>();
}
