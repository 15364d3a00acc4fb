/**
 * Kafka transport, on @platformatic/kafka 1.
 *
 * URL: kafka://host:port[,host:port...][?options]          (port defaults to 9092)
 *   acks=all|1|0           producer acks; default all (-1). `ackNs` is when the broker acknowledged the
 *                          produce request; with acks=0 the broker sends nothing back, so no `ackNs`.
 *   group=NAME             consumer group base name; default `coalmine.<clientName>`, or a random
 *                          `coalmine.anon.<hex>` per transport without a clientName (so every anonymous
 *                          coalminer reads every message). Each channel gets its own group `<base>/<topic>`:
 *                          this client's default partition assigner hands the leader's topics to every
 *                          member, so members of one group must all consume the same topic.
 *   fromBeginning=false    true: a channel with no committed offset starts at its earliest message instead
 *                          of at the moment subscribe() was called.
 *
 * Channels are topics (dots kept; characters outside [A-Za-z0-9._-] become `_`). The transport creates a
 * topic on its first publish or subscribe with the broker's partition and replica defaults and
 * `message.timestamp.type=LogAppendTime`, so `brokerNs` is the broker's append time. On a topic that
 * already existed with CreateTime the record timestamp is the producer's clock, so `brokerNs` is left
 * undefined there.
 *
 * Subscriptions: one consumer per (transport, channel), offsets tracked per partition by us, so a consumer
 * rebuilt after an outage resumes right after the last delivered record (no loss, no duplicates). With a
 * named group (clientName or ?group=) delivered offsets are committed every second, on rebalance and on
 * close, so a restarted coalminer resumes where it stopped; a subscription with no committed offset starts
 * at the offset of the time subscribe() was called (offset 0 when this subscribe created the topic), which
 * makes the first subscribe reliable even when the group join takes longer than the first publish.
 */
import { connectHint, type ConnectHints } from '../connect-hint.js';
import { untilAborted } from '../until-aborted.js';
import { randomBytes } from 'node:crypto';
import {
  Admin,
  Consumer,
  Producer,
  type ConnectionOptions,
  type Message,
  type MessagesStream,
} from '@platformatic/kafka';
import { DeliveryQueue, StatusHub, backoffMs, redactUrl, wallClockNs } from '../base.js';
import { StateWaiters } from '../state-waiters.js';
import { subscriptionQueue } from '../subscriptions.js';
import { sleep, withTimeout } from '../timeouts.js';
import {
  TransportError,
  type Delivery,
  type PublishOptions,
  type PublishReceipt,
  type Transport,
  type TransportOptions,
  type TransportStatus,
} from '../transport.js';
import { trackAppendTimes, type AppendTimes } from './append-time.js';
import { kafkaReason, toTransportError } from './errors.js';
import { parseKafkaUrl, topicFor, type KafkaUrl } from './url.js';

const LOG_APPEND_TIME = [{ name: 'message.timestamp.type', value: 'LogAppendTime' }];
const HINTS: ConnectHints = {
  server: 'Kafka',
  start: 'for tests: bash scripts/kafka.sh start',
  credentials: 'SASL user and password',
  isAuthFailure: (err) => kafkaReason(err).startsWith('SASL_AUTHENTICATION_FAILED'),
};

interface KafkaErrorLike {
  apiId?: string;
  code?: unknown;
  message?: unknown;
  errors?: unknown[];
  cause?: unknown;
}

/** Whether an error in err's tree (its aggregated errors and causes) is one `pred` picks. */
function anyError(err: unknown, pred: (e: KafkaErrorLike) => boolean): boolean {
  const seen: unknown[] = [err];
  for (let i = 0; i < seen.length && i < 50; i++) {
    const e = seen[i] as KafkaErrorLike | undefined;
    if (!e || typeof e !== 'object') continue;
    if (pred(e)) return true;
    if (Array.isArray(e.errors)) seen.push(...e.errors);
    if (e.cause) seen.push(e.cause);
  }
  return false;
}

const hasApiId = (err: unknown, id: string) => anyError(err, (e) => e.apiId === id);

/**
 * Whether the broker closed the connection unanswered with no socket error: what a TLS listener does
 * with a client that does not speak TLS (the client sees a plain close, not ECONNRESET).
 */
const closedUnanswered = (err: unknown) =>
  anyError(
    err,
    (e) =>
      e.code === 'PLT_KFK_NETWORK' &&
      typeof e.message === 'string' &&
      e.message.startsWith('Connection closed'),
  ) && !anyError(err, (e) => typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code));

export class KafkaTransport implements Transport {
  readonly kind = 'kafka';
  readonly textOnly = false;
  readonly displayUrl: string;
  readonly cfg: KafkaUrl;
  readonly wallNs: () => bigint;
  readonly groupBase: string;
  /** Whether the group name is stable across restarts, so committed offsets are worth keeping. */
  readonly durableGroup: boolean;
  readonly clientId: string;
  private readonly reconnect: { initialMs: number; maxMs: number };
  private readonly hub = new StatusHub();
  private readonly closeAc = new AbortController();
  private producer: Producer | undefined;
  private admin: Admin | undefined;
  private closing: Promise<void> | undefined;
  private connectedOnce = false;
  private checking = false;
  private readonly ensured = new Map<string, Promise<void>>();
  private readonly channels = new Map<string, ChannelConsumer>();
  private readonly waiters = new StateWaiters();

  constructor(url: string, opts: TransportOptions = {}) {
    this.displayUrl = redactUrl(url);
    this.cfg = parseKafkaUrl(url);
    this.wallNs = opts.wallNs ?? wallClockNs;
    this.reconnect = { initialMs: opts.reconnect?.initialMs ?? 100, maxMs: opts.reconnect?.maxMs ?? 5000 };
    const name = opts.clientName?.replace(/\s+/g, '_');
    this.groupBase =
      this.cfg.group ?? (name ? `coalmine.${name}` : `coalmine.anon.${randomBytes(6).toString('hex')}`);
    this.durableGroup = this.cfg.group !== undefined || name !== undefined;
    this.clientId = `coalmine-${name ?? 'anon'}`;
  }

  get state(): TransportStatus['type'] {
    return this.hub.state;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  status(): AsyncIterable<TransportStatus> {
    return this.hub.stream();
  }

  private setStatus(s: TransportStatus): void {
    this.hub.set(s);
    if (s.type === 'connected' || s.type === 'closed') this.waiters.wake();
  }

  /** Resolves once connected (at once if already), or when closed / `signal` aborts. */
  whenConnected(signal: AbortSignal): Promise<void> {
    if (this.state === 'connected' || this.closed || signal.aborted) return Promise.resolve();
    return this.waiters.wait(signal);
  }

  /** TLS and SASL from the URL, for every client this transport makes. */
  securityOptions(): Pick<ConnectionOptions, 'tls' | 'sasl'> {
    const { tls, sasl } = this.cfg;
    return { ...(tls ? { tls } : {}), ...(sasl ? { sasl } : {}) };
  }

  private baseOptions(retries: number) {
    return {
      ...this.securityOptions(),
      clientId: this.clientId,
      bootstrapBrokers: this.cfg.brokers,
      connectTimeout: 5000,
      timeout: 5000,
      retries,
      retryDelay: 200,
    };
  }

  private clients(): { producer: Producer; admin: Admin } {
    if (!this.producer || !this.admin) {
      // Few quick retries ride over leader elections and fresh topics; longer outages are ours to report.
      const producer = new Producer({ ...this.baseOptions(2), acks: this.cfg.acks, autocreateTopics: false });
      const admin = new Admin(this.baseOptions(2));
      for (const client of [producer, admin] as unknown as NodeJS.EventEmitter[])
        client.on('error', () => {});
      // A producer connection closing is how an outage first shows when nothing is being sent.
      producer.on('client:broker:disconnect', () => {
        if (producer === this.producer) this.lost('connection to the broker closed');
      });
      this.producer = producer;
      this.admin = admin;
    }
    return { producer: this.producer, admin: this.admin };
  }

  /**
   * Drops the clients after an outage. @platformatic/kafka can keep a request that was in flight when
   * the broker went away pending forever (and later identical requests wait on it), so clients that lived
   * through an outage are not trusted again.
   */
  private renewClients(): void {
    const old = [this.producer, this.admin];
    this.producer = undefined;
    this.admin = undefined;
    this.ensured.clear();
    for (const c of old)
      if (c) void withTimeout(c.close(), 3000, () => new Error('close timed out')).catch(() => {});
  }

  /** One metadata round trip on a throwaway client, so the answer never depends on a wedged one. */
  private async probe(): Promise<void> {
    const admin = new Admin(this.baseOptions(0));
    (admin as unknown as NodeJS.EventEmitter).on('error', () => {});
    try {
      await withTimeout(admin.metadata({ topics: [] }), 5000, () => new Error('metadata request timed out'));
    } finally {
      void withTimeout(admin.close(), 3000, () => new Error('close timed out')).catch(() => {});
    }
  }

  async connect(signal?: AbortSignal): Promise<void> {
    if (this.closed) throw new TransportError('closed', 'transport is closed');
    signal?.throwIfAborted();
    if (this.state === 'connected') return;
    this.setStatus({ type: 'connecting' });
    try {
      const probe = this.probe();
      probe.catch(() => {}); // given up on through the signal, it still closes its own admin client
      await untilAborted(probe, signal);
    } catch (err) {
      const aborted = signal?.aborted ?? false;
      const reason = aborted ? 'gave up waiting (signal aborted)' : kafkaReason(err);
      if (!this.closed) this.setStatus({ type: 'disconnected', error: reason });
      throw new TransportError(
        aborted ? 'timeout' : 'not_connected',
        `cannot connect to ${this.displayUrl}: ${reason} — ${connectHint(err, {
          ...HINTS,
          tls: this.cfg.tls
            ? { secure: true, otherScheme: 'kafka', switchTls: 'leave out tls=1' }
            : {
                secure: false,
                otherScheme: 'kafka',
                switchTls: 'add tls=1',
                // Without tls=1, a close like that from a TLS port means what a reset does: it wants TLS.
                closedAtOnce: (e) => !aborted && closedUnanswered(e),
              },
        })}`,
        {
          cause: err,
        },
      );
    }
    if (this.closed) throw new TransportError('closed', 'transport closed while connecting');
    this.connectedOnce = true;
    this.setStatus({ type: 'connected' });
  }

  /**
   * Something suggested the broker is gone. Checks at once (an idle connection closed by the broker is
   * not an outage); if it is gone, reports disconnected and probes with backoff until it answers.
   */
  lost(reason: string): void {
    if (this.closed || !this.connectedOnce || this.checking) return;
    this.checking = true;
    void (async () => {
      let error = reason;
      try {
        if (this.state === 'connected') {
          try {
            await this.probe();
            return;
          } catch (err) {
            error = kafkaReason(err);
          }
          if (this.closed) return;
          this.setStatus({ type: 'disconnected', error });
        }
        for (let attempt = 0; !this.closed; attempt++) {
          const delayMs = backoffMs(attempt, this.reconnect.initialMs, this.reconnect.maxMs);
          this.setStatus({ type: 'reconnecting', attempt: attempt + 1, delayMs, error });
          await sleep(delayMs, this.closeAc.signal);
          if (this.closed) return;
          try {
            await this.probe();
            if (this.closed) return;
            this.renewClients();
            this.setStatus({ type: 'connected' });
            return;
          } catch (err) {
            error = kafkaReason(err);
          }
        }
      } finally {
        this.checking = false;
      }
    })();
  }

  /** Creates the topic with LogAppendTime; true when this call created it, false when it existed. */
  async createTopic(topic: string): Promise<boolean> {
    try {
      await this.clients().admin.createTopics({
        topics: [topic],
        partitions: -1,
        replicas: -1,
        configs: LOG_APPEND_TIME,
      });
      return true;
    } catch (err) {
      if (hasApiId(err, 'TOPIC_ALREADY_EXISTS')) return false;
      throw err;
    }
  }

  private ensureTopic(topic: string): Promise<void> {
    let p = this.ensured.get(topic);
    if (!p) {
      p = this.createTopic(topic).then(() => undefined);
      this.ensured.set(topic, p);
      p.catch(() => this.ensured.delete(topic));
    }
    return p;
  }

  publish(channel: string, payload: Uint8Array, opts?: PublishOptions): Promise<PublishReceipt> {
    return this.send(channel, payload, opts?.timeoutMs ?? 5000);
  }

  private async send(channel: string, payload: Uint8Array, timeoutMs: number): Promise<PublishReceipt> {
    if (this.closed) throw new TransportError('closed', 'transport is closed');
    if (this.state !== 'connected') {
      throw new TransportError('not_connected', `not connected to ${this.displayUrl} (${this.state})`);
    }
    const topic = topicFor(channel);
    const { producer } = this.clients();
    const value = Buffer.from(payload);
    const work = (async (): Promise<PublishReceipt> => {
      await this.ensureTopic(topic);
      await producer.send({ messages: [{ topic, value }], acks: this.cfg.acks });
      return this.cfg.acks === 0 ? {} : { ackNs: this.wallNs() };
    })();
    try {
      return await withTimeout(
        work,
        timeoutMs,
        () => new TransportError('timeout', `publish to ${topic} not acknowledged within ${timeoutMs} ms`),
      );
    } catch (err) {
      if (this.closed)
        throw new TransportError('closed', 'transport closed while publishing', { cause: err });
      const te = toTransportError(err, `publish to ${topic} failed`);
      if (te.code === 'not_connected' || te.code === 'timeout') this.lost(te.message);
      throw te;
    }
  }

  subscribe(channel: string, signal: AbortSignal): AsyncIterable<Delivery> {
    return subscriptionQueue(this.closed, signal, (q) => {
      const topic = topicFor(channel);
      let cc = this.channels.get(topic);
      if (!cc) {
        cc = new ChannelConsumer(this, topic, BigInt(Date.now()));
        this.channels.set(topic, cc);
      }
      const consumer = cc;
      consumer.queues.add(q);
      return () => {
        consumer.queues.delete(q);
        q.end();
        if (consumer.queues.size === 0 && this.channels.get(topic) === consumer) {
          this.channels.delete(topic);
          void consumer.stop();
        }
      };
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closeAc.abort();
      const channels = [...this.channels.values()];
      this.channels.clear();
      await Promise.all(channels.map((c) => c.stop()));
      const quiet = (p: Promise<unknown> | undefined) =>
        p ? withTimeout(p, 3000, () => new Error('close timed out')).catch(() => {}) : undefined;
      await Promise.all([quiet(this.producer?.close()), quiet(this.admin?.close())]);
      this.setStatus({ type: 'closed' });
    })();
    return this.closing;
  }
}

/**
 * One channel of one transport: a Kafka consumer in group `<base>/<topic>`, rebuilt after failures, fanning
 * records out to every local subscription of the channel.
 */
class ChannelConsumer {
  readonly queues = new Set<DeliveryQueue<Delivery>>();
  /** partition → next offset to deliver. Survives consumer rebuilds, so nothing is lost or repeated. */
  private readonly position = new Map<number, bigint>();
  private readonly committed = new Map<number, bigint>();
  private readonly stopAc = new AbortController();
  private readonly groupId: string;
  private consumer: Consumer | undefined;
  private readonly done: Promise<void>;

  constructor(
    private readonly t: KafkaTransport,
    private readonly topic: string,
    /** When subscribe() was called: "from now on" means from the first record at or after this time. */
    private readonly sinceMs: bigint,
  ) {
    this.groupId = `${t.groupBase}/${topic}`;
    this.done = this.run();
  }

  private async run(): Promise<void> {
    let positioned = false;
    for (let attempt = 0; !this.stopAc.signal.aborted;) {
      await this.t.whenConnected(this.stopAc.signal);
      if (this.stopAc.signal.aborted || this.t.closed) return;
      const consumer = new Consumer({
        ...this.t.securityOptions(),
        clientId: this.t.clientId,
        groupId: this.groupId,
        bootstrapBrokers: this.t.cfg.brokers,
        connectTimeout: 5000,
        timeout: 5000,
        retries: 2,
        retryDelay: 200,
        autocommit: false,
        sessionTimeout: 10_000,
        rebalanceTimeout: 10_000,
        heartbeatInterval: 1000,
        // A fetch waits at most this long for data: bounds how late a stop or close is noticed.
        maxWaitTime: 500,
        highWaterMark: 1024,
      });
      (consumer as unknown as NodeJS.EventEmitter).on('error', () => {});
      this.consumer = consumer;
      let stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
      let commitTimer: NodeJS.Timeout | undefined;
      try {
        const times = trackAppendTimes(consumer);
        if (!positioned) {
          await this.initialPositions(consumer);
          positioned = true;
        }
        if (this.stopAc.signal.aborted) return;
        stream = await consumer.consume({
          topics: [this.topic],
          mode: 'manual',
          offsets: [...this.position].map(([partition, offset]) => ({
            topic: this.topic,
            partition,
            offset,
          })),
          fallbackMode: this.t.cfg.fromBeginning ? 'earliest' : 'latest',
          autocommit: false,
        });
        attempt = 0;
        if (this.t.durableGroup) {
          commitTimer = setInterval(() => void this.commit(), 1000);
          consumer.on('consumer:group:rebalance', () => void this.commit());
        }
        const s = stream;
        // One listener per consumer incarnation, removed when it ends: reconnects must not pile them up.
        let onStop: (() => void) | undefined;
        await new Promise<void>((resolve, reject) => {
          s.on('data', (m: Message<Buffer, Buffer, Buffer, Buffer>) => this.deliver(m, times));
          s.once('error', reject);
          s.once('close', resolve);
          if (this.stopAc.signal.aborted) resolve();
          onStop = () => resolve();
          this.stopAc.signal.addEventListener('abort', onStop, { once: true });
        }).finally(() => {
          if (onStop) this.stopAc.signal.removeEventListener('abort', onStop);
        });
        if (this.stopAc.signal.aborted) return;
        this.t.lost(`consumer of ${this.topic} stopped`);
      } catch (err) {
        if (this.stopAc.signal.aborted) return;
        this.t.lost(`consumer of ${this.topic} failed: ${kafkaReason(err)}`);
      } finally {
        clearInterval(commitTimer);
        await this.commit();
        await this.closeQuietly(consumer, stream);
        this.consumer = undefined;
      }
      await sleep(backoffMs(attempt++, 200, 5000), this.stopAc.signal);
    }
  }

  /** Where each partition starts: committed offset, else 0 for a topic this call created, else "now". */
  private async initialPositions(consumer: Consumer): Promise<void> {
    const created = await this.t.createTopic(this.topic);
    const latest = (await consumer.listOffsets({ topics: [this.topic] })).get(this.topic) ?? [];
    const partitions = latest.map((_, i) => i);
    let committed: bigint[] = [];
    if (this.t.durableGroup) {
      const c = await consumer.listCommittedOffsets({ topics: [{ topic: this.topic, partitions }] });
      committed = c.get(this.topic) ?? [];
    }
    let fallback: bigint[] = [];
    if (!created && this.t.cfg.fromBeginning) {
      fallback = (await consumer.listOffsets({ topics: [this.topic], timestamp: -2n })).get(this.topic) ?? [];
    } else if (!created) {
      fallback =
        (await consumer.listOffsets({ topics: [this.topic], timestamp: this.sinceMs })).get(this.topic) ?? [];
    }
    for (const p of partitions) {
      const c = committed[p];
      const f = fallback[p];
      const start =
        c !== undefined && c >= 0n ? c : created ? 0n : f !== undefined && f >= 0n ? f : latest[p]!;
      this.position.set(p, start);
      if (c !== undefined && c >= 0n) this.committed.set(p, c);
    }
  }

  private deliver(m: Message<Buffer, Buffer, Buffer, Buffer>, times: AppendTimes): void {
    const receivedNs = this.t.wallNs();
    const next = this.position.get(m.partition);
    // A rebuilt consumer may fetch a batch again from its start: skip what was already handed out.
    if (next !== undefined && m.offset < next) return;
    this.position.set(m.partition, m.offset + 1n);
    const appendMs = times.lookup(m.partition, m.offset);
    const delivery: Delivery = { payload: new Uint8Array(m.value ?? Buffer.alloc(0)), receivedNs };
    if (appendMs !== undefined) delivery.brokerNs = appendMs * 1_000_000n;
    for (const q of this.queues) q.push(delivery);
  }

  /** Commits what was delivered (never more), for a named group; failures wait for the next round. */
  private async commit(): Promise<void> {
    const consumer = this.consumer;
    if (!this.t.durableGroup || !consumer) return;
    const offsets = [...this.position]
      .filter(([p, o]) => this.committed.get(p) !== o)
      .map(([partition, offset]) => ({ topic: this.topic, partition, offset, leaderEpoch: -1 }));
    if (offsets.length === 0) return;
    try {
      await withTimeout(consumer.commit({ offsets }), 3000, () => new Error('commit timed out'));
      for (const o of offsets) this.committed.set(o.partition, o.offset);
    } catch {
      // At-least-once: an uncommitted offset only means a restarted coalminer sees a few records again.
    }
  }

  private async closeQuietly(
    consumer: Consumer,
    stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined,
  ) {
    const bounded = (p: Promise<unknown>) =>
      withTimeout(p, 3000, () => new Error('close timed out')).catch(() => {});
    if (stream) await bounded(stream.close());
    await bounded(consumer.close());
    // Forced: closes whatever stream is left without waiting for in-flight fetches.
    if (!consumer.closed)
      await bounded(new Promise<void>((resolve) => consumer.close(true, () => resolve())));
  }

  async stop(): Promise<void> {
    this.stopAc.abort();
    for (const q of this.queues) q.end();
    this.queues.clear();
    await this.done;
  }
}

export function create(url: string, opts?: TransportOptions): Transport {
  return new KafkaTransport(url, opts);
}
