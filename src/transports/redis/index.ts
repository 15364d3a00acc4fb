/**
 * Redis transport: pub/sub, or streams with consumer groups.
 *
 * URL forms:
 *   redis://[user:pass@]host[:port][/db]            pub/sub: PUBLISH / SUBSCRIBE
 *   rediss://...                                    the same over TLS (certificate checked against host)
 *   redis+stream://[user:pass@]host[:port][/db][?maxlen=10000&group=NAME&consumer=NAME]
 *   rediss+stream://...                             streams over TLS
 *
 * TLS options (rediss:// only; tls-options.ts): ca=/path/ca.pem, cert= and key= (client certificate),
 * servername=NAME, insecure=1 (no certificate check). Any scheme: passwordEnv=NAME reads the password
 * from that environment variable instead of the URL.
 *
 * Stream options:
 *   maxlen    approximate bound for each stream (XADD MAXLEN ~ N); default 10000
 *   group     consumer group of this coalminer; default: the transport's clientName, else "coalmine".
 *             Give each coalminer its own group: readers in one group share (split) the entries.
 *   consumer  consumer name inside the group; default: this host's name. Stable across restarts, so a
 *             restarted process picks up the entries pending for it.
 *
 * Channel names map to Redis unchanged: the pub/sub channel, or the stream key.
 *
 * Timestamps:
 *   ackNs     pub/sub: when the PUBLISH reply came back (the server took the message; pub/sub has no
 *             delivery ack). Streams: when the XADD reply came back (the entry is appended).
 *   brokerNs  streams only: the millisecond part of the entry id, Redis's own clock when it appended it.
 *
 * Pub/sub delivers only while connected: what is published during an outage is lost (the canary counts
 * it). A stream subscription resumes after a reconnect where it left off, so entries added while it was
 * away arrive late instead of being lost.
 */
import { connectHint, type ConnectHints } from '../connect-hint.js';
import { DeliveryQueue, StatusHub, redactUrl, wallClockNs } from '../base.js';
import {
  TransportError,
  type Delivery,
  type PublishOptions,
  type PublishReceipt,
  type Transport,
  type TransportOptions,
} from '../transport.js';
import { LinkDownError, LinkStatus, connectAborted } from '../links.js';
import { PublishWindow } from '../publish-window.js';
import { ChannelSubscribers, subscriptionQueue } from '../subscriptions.js';
import { RedisLink, describeError } from './link.js';
import { PAYLOAD_FIELD, StreamReader, streamIdNs } from './stream-reader.js';
import { parseRedisUrl, type RedisUrlConfig } from './url.js';

const DEFAULT_TIMEOUT_MS = 5000;

const HINTS: ConnectHints = {
  server: 'Redis',
  start: 'redis-server',
  credentials: 'user, password and database number',
  // WRONGPASS / NOAUTH, a password sent to a server without one, a database number it does not have.
  isAuthFailure: (err) =>
    /WRONGPASS|NOAUTH|without any password configured|DB index is out of range/.test(
      err instanceof Error ? err.message : String(err),
    ),
};

export class RedisTransport implements Transport {
  readonly kind = 'redis';
  readonly textOnly = false;
  readonly displayUrl: string;
  private readonly config: RedisUrlConfig;
  private readonly hub = new StatusHub();
  private readonly links = new LinkStatus(this.hub);
  private readonly wallNs: () => bigint;
  private readonly channels = new ChannelSubscribers<DeliveryQueue<Delivery>>();
  /** Streams: each channel's reader, with its own connection. */
  private readonly readers = new Map<string, StreamReader>();
  private readonly group: string;
  /** Commands: PUBLISH, XADD. */
  private main: RedisLink | undefined;
  /** Pub/sub: the one connection in subscriber mode that carries every channel. */
  private subscriber: RedisLink | undefined;
  private connected = false;
  private closed = false;
  private connecting: Promise<void> | undefined;
  private readonly window: PublishWindow;

  constructor(
    url: string,
    private readonly opts: TransportOptions = {},
  ) {
    this.config = parseRedisUrl(url);
    this.displayUrl = redactUrl(url);
    this.window = new PublishWindow(this.displayUrl);
    this.wallNs = opts.wallNs ?? wallClockNs;
    this.group = this.config.group ?? opts.clientName ?? 'coalmine';
  }

  get state() {
    return this.hub.state;
  }

  connect(signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new TransportError('closed', 'transport is closed'));
    if (this.connected) return Promise.resolve();
    this.connecting ??= this.firstConnect(signal).finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async firstConnect(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.hub.set({ type: 'connecting' });
    const main = this.newLink('main');
    const links = [main];
    let subscriber: RedisLink | undefined;
    if (this.config.mode === 'pubsub') {
      subscriber = this.newLink('sub', (c) => this.resubscribe(c));
      subscriber.client.on('messageBuffer', (channel: Buffer, message: Buffer) =>
        this.onMessage(channel, message),
      );
      links.push(subscriber);
    }
    const abort = () => links.forEach((l) => l.close());
    signal?.addEventListener('abort', abort, { once: true });
    try {
      await Promise.all(links.map((l) => l.open()));
      signal?.throwIfAborted();
    } catch (err) {
      abort();
      if (!this.closed) this.hub.set({ type: 'disconnected', error: describeError(err) });
      if (signal?.aborted) throw connectAborted(this.displayUrl, signal);
      throw new TransportError(
        'not_connected',
        `cannot connect to ${this.displayUrl}: ${describeError(err)} — ${connectHint(err, this.hints())}`,
        { cause: err },
      );
    } finally {
      signal?.removeEventListener('abort', abort);
    }
    if (this.closed) {
      abort();
      throw new TransportError('closed', 'transport was closed while connecting');
    }
    this.main = main;
    this.subscriber = subscriber;
    for (const l of links) this.links.add(l);
    this.connected = true;
    this.links.activate();
    // Stream subscriptions made before connect() start now.
    for (const channel of this.channels.channels()) if (!this.readers.has(channel)) this.startReader(channel);
  }

  private hints(): ConnectHints {
    const secure = this.config.connection.tls !== undefined;
    const stream = this.config.mode === 'stream' ? '+stream' : '';
    return { ...HINTS, tls: { secure, otherScheme: `${secure ? 'redis' : 'rediss'}${stream}` } };
  }

  private newLink(
    role: string,
    prepare?: ConstructorParameters<typeof RedisLink>[3],
    retryFirst = false,
  ): RedisLink {
    // The publishing link pipelines: every command issued in one turn of the event loop goes out in one
    // write, which is what lets a canary's batch of pings through at 100,000/s.
    const pipelining = role === 'main' ? { enableAutoPipelining: true } : {};
    const name = `coalmine-${role}${this.opts.clientName ? `-${this.opts.clientName}` : ''}`.replace(
      /[^A-Za-z0-9_.:-]/g,
      '_',
    );
    return new RedisLink(
      { ...this.config.connection, ...pipelining, connectionName: name },
      this.opts.reconnect ?? {},
      this.links,
      prepare,
      retryFirst,
    );
  }

  publish(channel: string, payload: Uint8Array, opts?: PublishOptions): Promise<PublishReceipt> {
    return this.publishNow(channel, payload, opts?.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  private async publishNow(channel: string, payload: Uint8Array, timeoutMs: number): Promise<PublishReceipt> {
    if (this.closed) throw new TransportError('closed', 'transport is closed');
    const main = this.main;
    if (!main)
      throw new TransportError('not_connected', `not connected to ${this.displayUrl}: call connect() first`);
    const body = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const command = (): Promise<unknown> =>
      this.config.mode === 'pubsub'
        ? main.run((c) => c.publish(channel, body))
        : main.run((c) => c.xadd(channel, 'MAXLEN', '~', this.config.maxlen, '*', PAYLOAD_FIELD, body));
    try {
      await this.window.send(command, timeoutMs);
      return { ackNs: this.wallNs() };
    } catch (err) {
      if (err instanceof TransportError) throw err;
      if (this.closed) throw new TransportError('closed', 'transport is closed', { cause: err });
      if (err instanceof LinkDownError || !(err instanceof Error) || !isReplyError(err)) {
        throw new TransportError('not_connected', `${this.displayUrl}: ${describeError(err)}`, {
          cause: err,
        });
      }
      throw new TransportError('rejected', `${this.displayUrl} refused the message: ${err.message}`, {
        cause: err,
      });
    }
  }

  subscribe(channel: string, signal: AbortSignal): AsyncIterable<Delivery> {
    return subscriptionQueue(this.closed, signal, (q) => {
      if (this.channels.add(channel, q) && this.connected) {
        if (this.config.mode === 'pubsub')
          this.subscriber?.run((c) => c.subscribe(channel)).catch(() => undefined);
        else this.startReader(channel);
      }
      return () => this.unsubscribe(channel, q);
    });
  }

  private unsubscribe(channel: string, q: DeliveryQueue<Delivery>): void {
    q.end();
    if (!this.channels.remove(channel, q)) return;
    const reader = this.readers.get(channel);
    if (reader) {
      this.readers.delete(channel);
      this.links.remove(reader.link);
      void reader.stop();
    } else if (this.config.mode === 'pubsub') {
      this.subscriber?.run((c) => c.unsubscribe(channel)).catch(() => undefined);
    }
  }

  /** Pub/sub: runs on every (re)connection of the subscriber link, before it counts as up. */
  private async resubscribe(client: RedisLink['client']): Promise<void> {
    const channels = this.channels.channels();
    if (channels.length > 0) await client.subscribe(...channels);
  }

  private onMessage(channel: Buffer, message: Buffer): void {
    const receivedNs = this.wallNs();
    const subs = this.channels.get(channel.toString());
    if (!subs) return;
    // A copy: a message that spanned two reads is a view into redis-parser's shared pool, which a later
    // message overwrites (its decreaseBufferPool restarts at offset 0), possibly while this one still waits
    // in the queue: under a flood the coalminer read another ping's bytes in its place (a duplicate).
    const payload = Uint8Array.from(message);
    for (const q of subs) q.push({ payload, receivedNs });
  }

  private startReader(channel: string): void {
    // The subscribers of the channel as it is now: a reader still stopping after its channel was dropped
    // and subscribed again must not deliver to the new subscribers next to the new reader.
    const queues = this.channels.get(channel);
    if (!queues) return;
    // Its own connection, retrying from the start: the transport is already up, so a failed first
    // attempt here is an outage like any other. It only calls ensureGroup once connected.
    const link = this.newLink('stream', (c) => reader.ensureGroup(c), true);
    const reader: StreamReader = new StreamReader(
      link,
      channel,
      this.group,
      this.config.consumer,
      (entry) => {
        const receivedNs = this.wallNs();
        // A copy, as in onMessage: the parser's pool may be reused while this waits in the queue.
        const delivery: Delivery = {
          payload: Uint8Array.from(entry.payload),
          receivedNs,
          brokerNs: streamIdNs(entry.id),
        };
        for (const q of queues) q.push(delivery);
      },
    );
    this.readers.set(channel, reader);
    this.links.add(link);
    link.client.connect().catch(() => undefined);
  }

  status() {
    return this.hub.stream();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.links.deactivate();
    for (const q of this.channels.clear()) q.end();
    const stopping = [...this.readers.values()].map((r) => r.stop());
    this.readers.clear();
    this.main?.close();
    this.subscriber?.close();
    await Promise.all(stopping);
    this.hub.set({ type: 'closed' });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function isReplyError(err: Error): boolean {
  // ioredis passes the server's error replies through as ReplyError; everything else is the connection.
  return err.name === 'ReplyError';
}

export function create(url: string, opts?: TransportOptions): Transport {
  return new RedisTransport(url, opts);
}
