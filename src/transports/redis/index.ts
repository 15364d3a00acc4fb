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
import {
  MAX_BATCH,
  PendingBatch,
  defineBatchCommand,
  publishBatch,
  scriptUnavailable,
} from './publish-batch.js';
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
  /** Pub/sub: publish through the batch script (publish-batch.ts); false once the server refused it. */
  private scripted = true;
  /** Pub/sub: publishes of this turn of the event loop waiting to go out, and the one being filled. */
  private batches: PendingBatch[] = [];
  private batch: PendingBatch | undefined;
  private queued = 0;
  /** Pub/sub: the channel of the last message received, and the block its copies are cut from. */
  private lastChannel: { bytes: Buffer; name: string } | undefined;
  private readonly received = new CopySlab();

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
    defineBatchCommand(main.client);
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
    const timeoutMs = opts?.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (this.config.mode !== 'pubsub' || !this.scripted) return this.publishNow(channel, payload, timeoutMs);
    if (this.closed) return Promise.reject(new TransportError('closed', 'transport is closed'));
    if (!this.main) return Promise.reject(this.notConnected());
    // Counted against the window now, as one publish of its own was before batching.
    if (this.window.full(this.queued + 1)) return Promise.reject(this.window.fullError());
    let batch = this.batch;
    if (
      batch === undefined ||
      batch.channel !== channel ||
      batch.timeoutMs !== timeoutMs ||
      batch.size >= MAX_BATCH
    ) {
      batch = this.batch = new PendingBatch(channel, timeoutMs);
      this.batches.push(batch);
      if (this.batches.length === 1) process.nextTick(this.flush);
    }
    this.queued++;
    return batch.add(asBuffer(payload));
  }

  /** Sends the batches of this turn of the event loop, in the order their publishes were issued. */
  private readonly flush = (): void => {
    const batches = this.batches;
    this.batches = [];
    this.batch = undefined;
    this.queued = 0;
    for (const b of batches) this.sendBatch(b);
  };

  private sendBatch(b: PendingBatch): void {
    if (b.size === 1) {
      // A ping on its own (every ping at the rates a canary usually runs) is the PUBLISH users' clients send.
      this.publishNow(b.channel, b.bodies[0]!, b.timeoutMs).then(b.resolves[0], b.rejects[0]!);
      return;
    }
    const main = this.main;
    if (this.closed || !main) {
      b.settle(
        0,
        b.size,
        undefined,
        this.closed ? new TransportError('closed', 'transport is closed') : this.notConnected(),
      );
      return;
    }
    this.window
      .send(() => main.run((c) => publishBatch(c, b.channel, b.bodies)), b.timeoutMs, b.size)
      .then(
        (outcome) => {
          // One clock read for the batch: the server took all of it with this one reply.
          b.settle(0, outcome.sent, { ackNs: this.wallNs() });
          if (outcome.sent < b.size)
            b.settle(outcome.sent, b.size, undefined, this.publishError(outcome.error));
        },
        (err: unknown) => {
          if (err instanceof Error && isReplyError(err) && scriptUnavailable(err)) {
            // The server runs no script of ours (an ACL without EVAL, scripting disabled): nothing of the
            // batch went out. From now on one PUBLISH per message, this batch included.
            this.scripted = false;
            for (let i = 0; i < b.size; i++)
              this.publishNow(b.channel, b.bodies[i]!, b.timeoutMs).then(b.resolves[i], b.rejects[i]!);
            return;
          }
          b.settle(0, b.size, undefined, this.publishError(err));
        },
      );
  }

  private notConnected(): TransportError {
    return new TransportError('not_connected', `not connected to ${this.displayUrl}: call connect() first`);
  }

  private async publishNow(channel: string, payload: Uint8Array, timeoutMs: number): Promise<PublishReceipt> {
    if (this.closed) throw new TransportError('closed', 'transport is closed');
    const main = this.main;
    if (!main) throw this.notConnected();
    const body = asBuffer(payload);
    const command = (): Promise<unknown> =>
      this.config.mode === 'pubsub'
        ? main.run((c) => c.publish(channel, body))
        : main.run((c) => c.xadd(channel, 'MAXLEN', '~', this.config.maxlen, '*', PAYLOAD_FIELD, body));
    try {
      await this.window.send(command, timeoutMs);
      return { ackNs: this.wallNs() };
    } catch (err) {
      throw this.publishError(err);
    }
  }

  /** A failed publish's error as the canary counts it. */
  private publishError(err: unknown): TransportError {
    if (err instanceof TransportError) return err;
    if (this.closed) return new TransportError('closed', 'transport is closed', { cause: err });
    if (err instanceof LinkDownError || !(err instanceof Error) || !isReplyError(err)) {
      return new TransportError('not_connected', `${this.displayUrl}: ${describeError(err)}`, {
        cause: err,
      });
    }
    return new TransportError('rejected', `${this.displayUrl} refused the message: ${err.message}`, {
      cause: err,
    });
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
    // The last channel's name is kept: a flood is mostly one channel, and its name a string per message.
    if (this.lastChannel === undefined || !this.lastChannel.bytes.equals(channel))
      this.lastChannel = { bytes: Buffer.from(channel), name: channel.toString() };
    const subs = this.channels.get(this.lastChannel.name);
    if (!subs) return;
    // A copy: a message that spanned two reads is a view into redis-parser's shared pool, which a later
    // message overwrites (its decreaseBufferPool restarts at offset 0), possibly while this one still waits
    // in the queue: under a flood the coalminer read another ping's bytes in its place (a duplicate).
    // Into consecutive slices of a block of our own, never written twice, instead of a fresh ArrayBuffer
    // per message.
    const payload = this.received.copy(message);
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

/**
 * Copies of received messages as consecutive slices of a 64 KiB block, a new block when it is full. A
 * slice is never written again, so each copy is its own for as long as it is held; a block is freed with
 * its last slice. It saves an ArrayBuffer per message.
 */
class CopySlab {
  private block = new Uint8Array(0);
  private used = 0;

  copy(message: Uint8Array): Uint8Array {
    const n = message.byteLength;
    if (n > 8192) return Uint8Array.from(message);
    if (this.used + n > this.block.length) {
      this.block = new Uint8Array(64 * 1024);
      this.used = 0;
    }
    const at = this.used;
    this.block.set(message, at);
    this.used = at + n;
    return this.block.subarray(at, at + n);
  }
}

/** The payload as a Buffer (what ioredis sends as bytes): itself when it is one, else a view of it. */
function asBuffer(payload: Uint8Array): Buffer {
  return Buffer.isBuffer(payload)
    ? payload
    : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
}

function isReplyError(err: Error): boolean {
  // ioredis passes the server's error replies through as ReplyError; everything else is the connection.
  return err.name === 'ReplyError';
}

export function create(url: string, opts?: TransportOptions): Transport {
  return new RedisTransport(url, opts);
}
