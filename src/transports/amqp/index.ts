/**
 * RabbitMQ (AMQP 0-9-1) transport.
 *
 *   amqp[s]://user:pass@host:port/vhost?exchange=coalmine&confirm=true&durable=false&prefetch=1000
 *
 * The path is the vhost (`/` or empty: the default vhost `/`; `/%2F` also means `/`). guest/guest when no
 * user is given. Query options:
 *   exchange=NAME       topic exchange to publish to and bind queues on (default `coalmine`), declared on every
 *                       (re)connect. The routing key is the logical channel as is (`coalmine.coalminer.eu-1`).
 *   confirm=true|false  publisher confirms (default true): publish() resolves when the broker confirmed, with
 *                       ackNs; a nack rejects with TransportError 'rejected'. With false it resolves once
 *                       the message is handed to the socket, without ackNs.
 *   durable=true|false  durable exchange, persistent messages and, with a client name or `queue`, durable named
 *                       queues that keep messages while the consumer is away (default false). The exchange
 *                       must be declared the same way by everyone: RabbitMQ refuses a redeclaration that differs.
 *   prefetch=N          unacknowledged deliveries per consumer (default 1000).
 *   queue=PREFIX        name subscription queues `PREFIX.<channel>` instead of letting the server name them.
 *   heartbeat=S         AMQP heartbeat in seconds (default 10), so a silent broker is noticed.
 *   connectTimeoutMs=N  TCP + AMQP handshake timeout (default 5000).
 *   amqps:// only: ca=, cert=, key=, servername=, insecure= (tls-options.ts); any scheme: passwordEnv=NAME.
 *
 * Queues: one per subscription, bound with the channel as routing key. By default exclusive and auto-delete
 * (gone when the subscription or connection ends). With durable=true and a client name (TransportOptions)
 * or `queue`, a durable queue `coalmine.<clientName>.<channel>` (or `PREFIX.<channel>`) that outlives us.
 *
 * No `mandatory` flag: a ping published before any coalminer has bound a queue is unroutable, and the
 * broker simply drops it (it still confirms). That is not a send error; the canary counts it as not received.
 *
 * ackNs: when the publisher confirm (basic.ack) arrived. brokerNs: RabbitMQ stamps nothing by default, so it
 * is left undefined, unless the rabbitmq_message_timestamp plugin adds its `timestamp_in_ms` header. We set
 * the AMQP `timestamp` property (seconds) on publish for other tools; it is our clock, so never brokerNs.
 */
import * as amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { parseAmqpUrl, type AmqpConfig } from './url.js';
import { backoffMs, DeliveryQueue, errorMessage, redactUrl, StatusHub, wallClockNs } from '../base.js';
import { ReconnectLoop } from '../reconnect-loop.js';
export { checkUrl, parseAmqpUrl, type AmqpConfig } from './url.js';
import {
  TransportError,
  type Delivery,
  type PublishOptions,
  type PublishReceipt,
  type Transport,
  type TransportErrorCode,
  type TransportOptions,
} from '../transport.js';

const noop = () => {};

/** An AMQP channel-close error carries the broker's reply code (404 NOT_FOUND, 406 PRECONDITION_FAILED...). */
function replyCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class AmqpTransport implements Transport {
  readonly kind = 'amqp';
  readonly textOnly = false;
  readonly displayUrl: string;
  readonly cfg: AmqpConfig;
  private readonly hub = new StatusHub();
  readonly wallNs: () => bigint;
  readonly initialMs: number;
  readonly maxMs: number;
  private readonly clientName: string | undefined;
  /** The connection everything currently runs on; set only once its topology and consumers are up. */
  private live: ChannelModel | undefined;
  private pubCh: Channel | ConfirmChannel | undefined;
  /** Why the broker closed the publish channel (e.g. 404 no exchange), so pending confirms can say so. */
  private pubChError: Error | undefined;
  private pubRetries = 0;
  /** Connections RabbitMQ blocks (memory or disk alarm), with the reason: it stops reading them until unblocked. */
  private readonly blocked = new WeakMap<ChannelModel, string>();
  private readonly subs = new Set<AmqpSubscription>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Connections whose socket has closed, so retries tied to them stop. */
  private readonly dead = new WeakSet<ChannelModel>();
  private readonly loop: ReconnectLoop;
  private closed = false;

  constructor(url: string, opts: TransportOptions = {}) {
    this.cfg = parseAmqpUrl(url);
    this.displayUrl = redactUrl(url);
    this.wallNs = opts.wallNs ?? wallClockNs;
    this.initialMs = opts.reconnect?.initialMs ?? 100;
    this.maxMs = opts.reconnect?.maxMs ?? 5000;
    this.loop = new ReconnectLoop({
      hub: this.hub,
      displayUrl: this.displayUrl,
      hints: {
        server: 'RabbitMQ',
        credentials: 'user, password and vhost',
        // 403 ACCESS_REFUSED: a bad login; 530 NOT_ALLOWED: no such vhost or no access to it.
        isAuthFailure: (err) => /ACCESS_REFUSED|NOT_ALLOWED/.test(errorText(err)),
        tls: this.cfg.tls
          ? { secure: true, otherScheme: 'amqp' }
          : {
              secure: false,
              otherScheme: 'amqps',
              closedAtOnce: (err) => /Socket closed abruptly during opening handshake/.test(errorText(err)),
            },
      },
      initialMs: this.initialMs,
      maxMs: this.maxMs,
      open: (signal) => this.open(signal),
      isClosed: () => this.closed,
      isLive: () => this.live !== undefined,
    });
    this.clientName = opts.clientName;
  }

  get state() {
    return this.hub.state;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  isLive(conn: ChannelModel): boolean {
    return !this.closed && this.live === conn;
  }

  isDead(conn: ChannelModel): boolean {
    return this.closed || this.dead.has(conn);
  }

  /** A timer the transport owns: cleared on close. */
  later(fn: () => void, ms: number): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  clearLater(t: NodeJS.Timeout | undefined): void {
    if (!t) return;
    clearTimeout(t);
    this.timers.delete(t);
  }

  connect(signal?: AbortSignal): Promise<void> {
    return this.loop.connect(signal);
  }

  private async dial(signal?: AbortSignal): Promise<ChannelModel> {
    signal?.throwIfAborted();
    const pending = amqp.connect(this.cfg.connect, {
      ...this.cfg.tls,
      timeout: this.cfg.connectTimeoutMs,
      noDelay: true,
      clientProperties: { connection_name: this.clientName ?? 'coalmine' },
    });
    if (!signal) return pending;
    let onAbort = noop;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        // The handshake may still finish: close what it yields so no connection leaks.
        pending.then((c) => c.close().catch(noop), noop);
        reject(
          new TransportError('timeout', `connecting to ${this.displayUrl} was aborted`, {
            cause: signal.reason,
          }),
        );
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([pending, aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Opens a connection, declares the exchange, restarts every consumer, then reports connected. */
  private async open(signal?: AbortSignal): Promise<void> {
    const conn = await this.dial(signal);
    let lost = false;
    let lastError: Error | undefined;
    // 'error' precedes 'close' when the broker or socket fails; without a listener it would be thrown.
    conn.on('error', (err: Error) => (lastError = err));
    conn.on('blocked', (reason: string) => this.blocked.set(conn, reason));
    conn.on('unblocked', () => this.blocked.delete(conn));
    conn.on('close', (err?: Error) => {
      lost = true;
      this.dead.add(conn);
      this.onConnectionLost(conn, err ?? lastError);
    });
    try {
      await this.openPublishChannel(conn);
      await Promise.all([...this.subs].map((s) => s.start(conn)));
      if (lost) throw lastError ?? new Error('connection closed while declaring topology');
      if (this.closed) throw new TransportError('closed', 'transport closed while connecting');
    } catch (err) {
      conn.close().catch(noop);
      throw err;
    }
    this.live = conn;
    this.loop.connected();
    // Subscriptions added while this connection was being set up.
    for (const s of this.subs) void s.start(conn);
  }

  private onConnectionLost(conn: ChannelModel, err: Error | undefined): void {
    if (this.live !== conn) return; // a connection that never got up: open() reports that
    this.live = undefined;
    this.pubCh = undefined;
    if (this.closed) return;
    const error = err ? errorMessage(err) : 'connection closed';
    this.loop.lost(error);
  }

  private async openPublishChannel(conn: ChannelModel): Promise<void> {
    const ch = this.cfg.confirm ? await conn.createConfirmChannel() : await conn.createChannel();
    ch.on('error', (err: Error) => {
      if (this.pubCh === ch) this.pubChError = err;
    });
    ch.on('close', () => this.onPublishChannelClosed(conn, ch));
    await ch.assertExchange(this.cfg.exchange, 'topic', { durable: this.cfg.durable, autoDelete: false });
    this.pubChError = undefined;
    this.pubCh = ch;
  }

  /**
   * The broker closes a channel (not the connection) on a protocol error, e.g. publishing to an exchange
   * someone deleted: reopen it, re-declare the exchange and re-bind the queues the deletion unbound.
   */
  private onPublishChannelClosed(conn: ChannelModel, ch: Channel): void {
    if (this.pubCh !== ch) return;
    this.pubCh = undefined;
    if (!this.isLive(conn)) return; // connection loss: the reconnect redoes everything
    const retry = () => {
      if (!this.isLive(conn) || this.pubCh) return;
      this.openPublishChannel(conn)
        .then(() => {
          this.pubRetries = 0;
          for (const s of this.subs) s.rebind();
        })
        .catch(() => {
          if (!this.isLive(conn)) return;
          this.pubRetries++;
          this.later(retry, backoffMs(this.pubRetries, this.initialMs, this.maxMs));
        });
    };
    this.later(retry, backoffMs(this.pubRetries, this.initialMs, this.maxMs));
  }

  publish(channel: string, payload: Uint8Array, opts?: PublishOptions): Promise<PublishReceipt> {
    if (this.closed) return Promise.reject(new TransportError('closed', 'transport is closed'));
    const ch = this.pubCh;
    if (!this.live || !ch) {
      return Promise.reject(new TransportError('not_connected', `not connected to ${this.displayUrl}`));
    }
    const blocked = this.blocked.get(this.live);
    if (blocked !== undefined) {
      // It would sit unread until the alarm clears; say why now instead of timing out.
      return Promise.reject(
        new TransportError('rejected', `${this.displayUrl} blocks publishers: ${blocked}`),
      );
    }
    const options: Options.Publish = {
      timestamp: Math.floor(Date.now() / 1000),
      deliveryMode: this.cfg.durable ? 2 : 1,
    };
    const content = Buffer.from(payload);
    if (!this.cfg.confirm) {
      try {
        // false only means the socket buffer is full; amqplib still sends the message.
        ch.publish(this.cfg.exchange, channel, content, options);
        return Promise.resolve({});
      } catch (err) {
        return Promise.reject(
          new TransportError('not_connected', `publish channel closed: ${errorMessage(err)}`, { cause: err }),
        );
      }
    }
    const timeoutMs = opts?.timeoutMs ?? 5000;
    return new Promise<PublishReceipt>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      const timer = setTimeout(
        () =>
          settle(() =>
            reject(
              new TransportError(
                'timeout',
                `no publisher confirm from ${this.displayUrl} within ${timeoutMs} ms`,
              ),
            ),
          ),
        timeoutMs,
      );
      try {
        (ch as ConfirmChannel).publish(this.cfg.exchange, channel, content, options, (err) => {
          if (!err) {
            const ackNs = this.wallNs();
            settle(() => resolve({ ackNs }));
            return;
          }
          settle(() => reject(this.publishError(err, ch)));
        });
      } catch (err) {
        settle(() =>
          reject(
            new TransportError('not_connected', `publish channel closed: ${errorMessage(err)}`, {
              cause: err,
            }),
          ),
        );
      }
    });
  }

  /** amqplib fails a confirm callback with 'message nacked', or with 'channel closed' when the channel went. */
  private publishError(err: Error, ch: Channel): TransportError {
    if (this.closed)
      return new TransportError('closed', 'transport closed before the broker confirmed', { cause: err });
    if (err.message === 'message nacked') {
      return new TransportError('rejected', `${this.displayUrl} nacked the message`, { cause: err });
    }
    const channelError = this.pubCh === undefined || this.pubCh === ch ? this.pubChError : undefined;
    if (channelError) {
      const code = replyCode(channelError);
      const tooLarge = code === 406 && /size|large/i.test(channelError.message);
      const kind: TransportErrorCode = tooLarge ? 'too_large' : 'rejected';
      return new TransportError(
        kind,
        `${this.displayUrl} closed the publish channel: ${channelError.message}`,
        {
          cause: channelError,
        },
      );
    }
    return new TransportError('not_connected', `connection to ${this.displayUrl} lost before the confirm`, {
      cause: err,
    });
  }

  subscribe(channel: string, signal: AbortSignal): AsyncIterable<Delivery> {
    const sub = new AmqpSubscription(this, channel, this.queueNameFor(channel));
    const stop = () => {
      this.subs.delete(sub);
      sub.stop();
    };
    if (this.closed || signal.aborted) {
      sub.stop();
      return sub.queue;
    }
    this.subs.add(sub);
    signal.addEventListener('abort', stop, { once: true });
    if (this.live) void sub.start(this.live);
    return sub.queue;
  }

  private queueNameFor(channel: string): { name: string; durable: boolean } {
    const prefix =
      this.cfg.queuePrefix ?? (this.cfg.durable && this.clientName ? `coalmine.${this.clientName}` : '');
    if (!prefix) return { name: '', durable: false };
    return { name: `${prefix}.${channel}`, durable: this.cfg.durable };
  }

  status() {
    return this.hub.stream();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.loop.stop();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.subs) s.stop();
    this.subs.clear();
    const conn = this.live;
    this.live = undefined;
    this.pubCh = undefined;
    // close() rejects when the socket is already gone; the connection is finished either way.
    if (conn) await conn.close().catch(noop);
    await this.loop.end();
    this.hub.set({ type: 'closed' });
  }
}

/** One subscription: its own channel, queue and consumer, re-created on every new connection. */
class AmqpSubscription {
  readonly queue = new DeliveryQueue<Delivery>();
  private ch: Channel | undefined;
  /** The connection this subscription was last started on, so it is started once per connection. */
  private conn: ChannelModel | undefined;
  private queueName: string | undefined;
  private retries = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly owner: AmqpTransport,
    private readonly routingKey: string,
    private readonly spec: { name: string; durable: boolean },
  ) {}

  /** Never rejects: a failure is retried with backoff while the connection lives. */
  async start(conn: ChannelModel): Promise<void> {
    if (this.stopped || this.conn === conn) return;
    this.conn = conn;
    this.ch = undefined;
    this.queueName = undefined;
    let ch: Channel | undefined;
    try {
      ch = await conn.createChannel();
      const opened = ch;
      ch.on('error', noop); // the 'close' that follows is what we act on
      ch.on('close', () => this.onChannelClosed(conn, opened));
      // amqplib queues RPCs on a channel, so issuing them together saves round trips before the queue is bound.
      const [, q] = await Promise.all([
        ch.prefetch(this.owner.cfg.prefetch),
        ch.assertQueue(this.spec.name, {
          durable: this.spec.durable,
          exclusive: !this.spec.durable,
          autoDelete: !this.spec.durable,
        }),
      ]);
      await Promise.all([
        ch.bindQueue(q.queue, this.owner.cfg.exchange, this.routingKey),
        ch.consume(q.queue, (msg) => this.onMessage(opened, msg), { noAck: false }),
      ]);
      if (this.stopped) {
        ch.close().catch(noop);
        return;
      }
      this.ch = ch;
      this.queueName = q.queue;
      this.retries = 0;
    } catch {
      ch?.close().catch(noop);
      this.retryLater(conn);
    }
  }

  private retryLater(conn: ChannelModel): void {
    if (this.stopped || this.conn !== conn || this.retryTimer) return;
    this.retries++;
    this.retryTimer = this.owner.later(
      () => {
        this.retryTimer = undefined;
        // Only on the connection it failed on, once that one is fully up; a new connection restarts us anyway.
        if (this.stopped || this.conn !== conn) return;
        if (this.owner.isDead(conn)) return;
        if (!this.owner.isLive(conn)) {
          this.retryLater(conn); // still being set up
          return;
        }
        this.conn = undefined;
        void this.start(conn);
      },
      backoffMs(this.retries - 1, this.owner.initialMs, this.owner.maxMs),
    );
  }

  /** The broker closed our channel (protocol error, queue deleted) while the connection lives: start over. */
  private onChannelClosed(conn: ChannelModel, ch: Channel): void {
    if (this.ch !== ch || this.stopped) return;
    this.ch = undefined;
    if (!this.owner.isDead(conn)) this.retryLater(conn);
  }

  private onMessage(ch: Channel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled the consumer (queue deleted): closing the channel makes us start over.
      ch.close().catch(noop);
      return;
    }
    const receivedNs = this.owner.wallNs();
    const stamp: unknown = msg.properties.headers?.timestamp_in_ms;
    const delivery: Delivery = { payload: msg.content, receivedNs };
    if (typeof stamp === 'number' && Number.isFinite(stamp))
      delivery.brokerNs = BigInt(Math.round(stamp)) * 1_000_000n;
    this.queue.push(delivery);
    try {
      ch.ack(msg);
    } catch {
      // Channel already closed: the broker redelivers to the next consumer or drops with the exclusive queue.
    }
  }

  /** Re-binds after the exchange was re-declared (deleting an exchange removes its bindings). */
  rebind(): void {
    if (this.ch && this.queueName) {
      this.ch.bindQueue(this.queueName, this.owner.cfg.exchange, this.routingKey).catch(noop);
    }
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.owner.clearLater(this.retryTimer);
    this.queue.end();
    const ch = this.ch;
    this.ch = undefined;
    // Closing the channel cancels the consumer; an exclusive auto-delete queue goes with it.
    ch?.close().catch(noop);
  }
}

export function create(url: string, opts?: TransportOptions): Transport {
  return new AmqpTransport(url, opts);
}
