import { nsToSeconds } from '../../core/clock.js';
import type { Observation } from '../../core/types.js';
import { PRUNED, type FlowStats } from '../../messaging/canary.js';
import { FOREIGN_REASONS, type Coalminer, type ForeignReason } from '../../messaging/coalminer.js';
import {
  countsAsReceived,
  type CanaryObserver,
  type CoalminerObserver,
  type MessagingSink,
} from '../../messaging/observer.js';
import { VALUE_HELP } from '../../probes/value-help.js';
import type { Transport } from '../../transports/transport.js';
import { Meter, type CounterSeries, type HistogramSeries, type MeterOptions } from './instruments.js';
import type { MetricData } from './model.js';

/**
 * The agent's measurements as OpenTelemetry metrics. Names are stable, dotted and unit-suffix free, so
 * that a collector's Prometheus exporter turns each into the name our /metrics already uses (dots to
 * underscores, `_seconds` from unit `s`, `_total` for sums); attributes are our label names. The mapping,
 * with what differs, is in README.md beside this file.
 */

type Flow = 'canary' | 'coalminer' | 'transport' | 'region';
const FLOW = ['canary', 'coalminer', 'transport', 'region'] as const;

export class OtlpMetrics implements MessagingSink {
  private readonly meter: Meter;
  private readonly probeDuration;
  private readonly probePhase;
  private readonly probeNetwork;
  private readonly probeSuccess;
  private readonly latency;
  private readonly hops;
  private readonly ack;
  private readonly rtt;
  private readonly due;
  private readonly sent;
  private readonly sendErrors;
  private readonly foreign;
  private readonly refused;
  private readonly controlErrors;
  private readonly counts: Record<
    | 'received'
    | 'lost'
    | 'duplicated'
    | 'reordered'
    | 'late'
    | 'stale'
    | 'send_failed_arrived'
    | 'dropped_locally'
    | 'negative_latency',
    (v: Record<Flow, string>) => CounterSeries
  >;
  private readonly coalminers = new Set<{ c: Coalminer; transport: string; region: string }>();
  /** Each canary's stats reader (CanaryObserver.watch), for the behind-schedule gauges. */
  private readonly canaries = new Set<{
    canary: string;
    transport: string;
    read: () => Map<string, FlowStats>;
  }>();
  private readonly transports = new Set<Transport>();
  /** Probe series by target, kind and result, made once: a probe run then allocates no attribute list. */
  private readonly probeSeries = new Map<string, HistogramSeries>();
  /** Each target's kind and the values of its last run: what the probe.<value> gauges read. */
  private readonly probeValues = new Map<
    string,
    { kind: string; values: Readonly<Record<string, number>> }
  >();
  /** The probe.<value> gauges made so far, one per value name seen. */
  private readonly valueGauges = new Set<string>();

  constructor(opts: MeterOptions) {
    const m = (this.meter = new Meter(opts));
    const s = 's';
    this.probeDuration = m.histogram(
      {
        name: 'coalmine.probe.duration',
        unit: s,
        description:
          'Wall time of each probe run, successful or not (as blackbox_exporter measures it); result is success or the error code',
      },
      ['target', 'kind', 'result'],
    );
    this.probeNetwork = m.histogram(
      {
        name: 'coalmine.probe.network',
        unit: s,
        description:
          "Successful probe runs' network time: the kernel-timed phases (TCP_INFO connect, packet timestamps; ICMP: mean RTT)",
      },
      ['target', 'kind'],
    );
    this.probePhase = m.histogram(
      {
        name: 'coalmine.probe.phase.duration',
        unit: s,
        description:
          'How long each phase of a probe run took (resolve, connect, tls, processing, transfer, ...)',
      },
      ['target', 'kind', 'phase'],
    );
    this.probeSuccess = m.gauge(
      {
        name: 'coalmine.probe.success',
        unit: '1',
        description: 'Whether the last probe of the target succeeded (1) or failed (0)',
      },
      ['target', 'kind'],
      true,
    );
    this.latency = m.histogram(
      {
        name: 'coalmine.message.latency',
        unit: s,
        description:
          'One-way latency of canary pings, clock-corrected, from the intended send time (from=intended, coordinated-omission corrected) and from the actual send time (from=sent)',
      },
      [...FLOW, 'from'],
    );
    this.hops = m.histogram(
      {
        name: 'coalmine.message.hop.latency',
        unit: s,
        description:
          'Legs of a ping through a broker that stamps messages: segment=to_broker and segment=from_broker, on the broker clock',
      },
      [...FLOW, 'segment'],
    );
    this.ack = m.histogram(
      {
        name: 'coalmine.publish.ack',
        unit: s,
        description: 'Time from publishing a ping to the broker acknowledging it',
      },
      ['canary', 'transport'],
    );
    this.rtt = m.histogram(
      {
        name: 'coalmine.message.rtt',
        unit: s,
        description: 'Round-trip time of echoed pings, on the canary clock',
      },
      ['canary', 'coalminer', 'transport'],
    );
    const count = (name: string, description: string) =>
      m.counter({ name: `coalmine.messages.${name}`, unit: '{message}', description }, FLOW);
    this.counts = {
      received: count('received', 'Pings received, each sequence number once'),
      lost: count('lost', 'Pings declared lost (after the reorder window or loss timeout)'),
      duplicated: count('duplicated', 'Pings received more than once (extra copies)'),
      reordered: count('reordered', 'Pings received after a later sequence number'),
      late: count('late', 'Pings received after they had been declared lost'),
      stale: count('stale', 'Pings too old to judge (before the flow started or beyond the history window)'),
      send_failed_arrived: count(
        'send_failed_arrived',
        'Pings the canary reported as failed to publish that arrived anyway: publishes whose outcome was in doubt',
      ),
      dropped_locally: count(
        'dropped_locally',
        "Pings that reached the coalminer but that its own subscription buffer dropped: the coalminer's loss, not the broker's",
      ),
      negative_latency: count(
        'negative_latency',
        'Pings that arrived before they were sent by the corrected clocks (the clock offset was off by more than its bound)',
      ),
    };
    this.due = m.counter(
      {
        name: 'coalmine.messages.due',
        unit: '{message}',
        description:
          'Pings whose intended send time passed: attempted (sent, send errors, pending) plus behind schedule',
      },
      ['canary', 'coalminer', 'transport'],
    );
    m.observedGauge(
      {
        name: 'coalmine.messages.behind_schedule',
        unit: '{message}',
        description: 'Pings due but not attempted: the canary fell behind its schedule (due - attempted)',
      },
      ['canary', 'coalminer', 'transport'],
      true,
      () => this.behind('behind'),
    );
    m.observedGauge(
      {
        name: 'coalmine.canary.behind_schedule',
        unit: s,
        description:
          'How far the canary is behind its schedule: now minus the intended send time of the next ping not yet attempted',
      },
      ['canary', 'coalminer', 'transport'],
      false,
      () => this.behind('behindSeconds'),
    );
    this.sent = m.counter(
      {
        name: 'coalmine.messages.sent',
        unit: '{message}',
        description: 'Pings the transport accepted (acknowledged where it acknowledges)',
      },
      ['canary', 'coalminer', 'transport'],
    );
    this.sendErrors = m.counter(
      {
        name: 'coalmine.message.send_errors',
        unit: '{message}',
        description: 'Pings that could not be published, by reason',
      },
      ['canary', 'coalminer', 'transport', 'reason'],
    );
    this.foreign = m.counter(
      {
        name: 'coalmine.messages.foreign',
        unit: '{message}',
        description: 'Messages on a coalminer channel not taken as its pings, by reason, ignored',
      },
      ['coalminer', 'transport', 'reason'],
    );
    this.refused = m.counter(
      {
        name: 'coalmine.canary.registrations_refused',
        unit: '{message}',
        description: 'Registrations a canary refused, by reason',
      },
      ['canary', 'transport', 'reason'],
    );
    this.controlErrors = m.counter(
      {
        name: 'coalmine.canary.control_errors',
        unit: '{message}',
        description: 'Trouble on a canary control channel, by kind',
      },
      ['canary', 'transport', 'kind'],
    );
    m.observedGauge(
      {
        name: 'coalmine.messages.in_flight',
        unit: '{message}',
        description: 'Pings missing but not yet judged lost (within the reorder window and loss timeout)',
      },
      FLOW,
      true,
      () => this.inFlight(),
    );
    m.observedGauge(
      {
        name: 'coalmine.clock.offset',
        unit: s,
        description: 'Estimated canary clock minus coalminer clock; one-way latency is corrected by it',
      },
      ['canary', 'coalminer'],
      false,
      () => this.clock('offsetNs'),
    );
    m.observedGauge(
      {
        name: 'coalmine.clock.offset.error',
        unit: s,
        description: 'Bound on the error of coalmine.clock.offset (half the best sync round trip)',
      },
      ['canary', 'coalminer'],
      false,
      () => this.clock('errorNs'),
    );
    m.observedGauge(
      {
        name: 'coalmine.transport.up',
        unit: '1',
        description: 'Whether the transport is connected (1) or not (0)',
      },
      ['transport', 'url'],
      true,
      () =>
        [...this.transports].map((t) => [[t.kind, t.displayUrl], t.state === 'connected' ? 1 : 0] as const),
    );
  }

  observeProbe(o: Observation): void {
    const { name: target, kind, result } = o;
    const outcome = result.ok ? 'success' : result.error.code;
    const key = `${kind}\u0000${target}\u0000${outcome}`;
    let duration = this.probeSeries.get(key);
    if (!duration)
      this.probeSeries.set(key, (duration = this.probeDuration({ target, kind, result: outcome })));
    duration.record(nsToSeconds(result.durationNs));
    if (result.ok && result.networkNs !== undefined)
      this.probeNetwork({ target, kind }).record(nsToSeconds(result.networkNs));
    this.probeSuccess({ target, kind }).set(result.ok ? 1 : 0);
    const phases = result.phases ?? {};
    for (const phase in phases) {
      const ns = phases[phase as keyof typeof phases];
      if (ns !== undefined) this.probePhase({ target, kind, phase }).record(nsToSeconds(ns));
    }
    // Only the last run's values are sent: one the last run lacks (no TLS this time) is gone, not stale.
    const values = result.values ?? {};
    this.probeValues.set(target, { kind, values });
    for (const name in values) if (!this.valueGauges.has(name)) this.valueGauge(name);
  }

  /**
   * probe.<name>, e.g. probe.http_status_code: blackbox_exporter's probe_<name> once a collector turns
   * dots to underscores. No unit, so that the collector adds no suffix to the name.
   */
  private valueGauge(name: string): void {
    this.valueGauges.add(name);
    const probeValues = this.probeValues;
    this.meter.observedGauge(
      {
        name: `probe.${name}`,
        unit: '',
        description: VALUE_HELP[name] ?? `Probe value ${name} from the last run`,
      },
      ['target', 'kind'],
      false,
      function* () {
        for (const [target, { kind, values }] of probeValues) {
          const v = values[name];
          if (v !== undefined) yield [[target, kind], v] as const;
        }
      },
    );
  }

  canaryObserver(canary: string, transport: string): CanaryObserver {
    const byCoalminer = new Map<string, { sent: CounterSeries; rtt: HistogramSeries }>();
    const children = (coalminer: string) => {
      let c = byCoalminer.get(coalminer);
      if (!c) {
        const l = { canary, coalminer, transport };
        byCoalminer.set(coalminer, (c = { sent: this.sent(l), rtt: this.rtt(l) }));
      }
      return c;
    };
    const ack = this.ack({ canary, transport });
    return {
      due: (coalminer, n) => this.due({ canary, coalminer, transport }).add(n),
      watch: (read) => void this.canaries.add({ canary, transport, read }),
      sent: (coalminer) => children(coalminer).sent.add(1),
      sendError: (coalminer, reason, n) => this.sendErrors({ canary, coalminer, transport, reason }).add(n),
      publishAck: (_coalminer, seconds) => ack.record(seconds),
      rtt: (coalminer, seconds) => children(coalminer).rtt.record(seconds),
      refused: (reason) => this.refused({ canary, transport, reason }).add(1),
      controlError: (kind) => this.controlErrors({ canary, transport, kind }).add(1),
      // Series are bounded by the meter (an overflow series past maxSeries); the handles are dropped.
      pruned: (coalminer) => byCoalminer.delete(coalminer),
    };
  }

  coalminerObserver(coalminer: string, transport: string, region: string): CoalminerObserver {
    type Children = Record<'fromIntended' | 'fromSent' | 'toBroker' | 'fromBroker', HistogramSeries> &
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
        CounterSeries
      >;
    const byCanary = new Map<string, Children>();
    const children = (canary: string): Children => {
      let c = byCanary.get(canary);
      if (!c) {
        const l = { canary, coalminer, transport, region };
        c = {
          fromIntended: this.latency({ ...l, from: 'intended' }),
          fromSent: this.latency({ ...l, from: 'sent' }),
          toBroker: this.hops({ ...l, segment: 'to_broker' }),
          fromBroker: this.hops({ ...l, segment: 'from_broker' }),
          received: this.counts.received(l),
          reordered: this.counts.reordered(l),
          duplicate: this.counts.duplicated(l),
          late: this.counts.late(l),
          stale: this.counts.stale(l),
          lost: this.counts.lost(l),
          sendFailedArrived: this.counts.send_failed_arrived(l),
          droppedLocally: this.counts.dropped_locally(l),
          negativeLatency: this.counts.negative_latency(l),
        };
        byCanary.set(canary, c);
      }
      return c;
    };
    const foreign = Object.fromEntries(
      FOREIGN_REASONS.map((reason) => [reason, this.foreign({ coalminer, transport, reason })]),
    ) as Record<ForeignReason, { add(n: number): void }>;
    return {
      latency: (canary, fromIntended, fromSent) => {
        const c = children(canary);
        c.fromIntended.record(fromIntended);
        c.fromSent.record(fromSent);
      },
      arrival: (canary, kind) => {
        const c = children(canary);
        if (countsAsReceived(kind)) c.received.add(1);
        if (kind !== 'new') c[kind].add(1);
      },
      lost: (canary, n) => children(canary).lost.add(n),
      sendFailedArrived: (canary, n) => children(canary).sendFailedArrived.add(n),
      droppedLocally: (canary, n) => {
        if (n > 0) children(canary).droppedLocally.add(n);
      },
      negativeLatency: (canary) => children(canary).negativeLatency.add(1),
      hops: (canary, toBroker, fromBroker) => {
        const c = children(canary);
        c.toBroker.record(toBroker);
        c.fromBroker.record(fromBroker);
      },
      foreign: (reason) => foreign[reason].add(1),
    };
  }

  watchCoalminer(c: Coalminer, transport: string, region: string): void {
    this.coalminers.add({ c, transport, region });
  }

  watchTransport(t: Transport): void {
    this.transports.add(t);
  }

  collect(): MetricData[] {
    return this.meter.collect();
  }

  private *inFlight(): Iterable<readonly [string[], number]> {
    for (const { c, transport, region } of this.coalminers)
      for (const [canary, n] of c.inFlight()) yield [[canary, c.name, transport, region], n];
  }

  /** Every watched canary's coalminers (not the pruned aggregate) and one of their schedule figures. */
  private *behind(field: 'behind' | 'behindSeconds'): Iterable<readonly [string[], number]> {
    for (const { canary, transport, read } of this.canaries)
      for (const [coalminer, st] of read())
        if (coalminer !== PRUNED) yield [[canary, coalminer, transport], st[field]];
  }

  private *clock(field: 'offsetNs' | 'errorNs'): Iterable<readonly [string[], number]> {
    for (const { c } of this.coalminers)
      for (const canary of c.canaries()) {
        const est = c.clockEstimate(canary);
        if (est) yield [[canary, c.name], est[field] / 1e9];
      }
  }
}
