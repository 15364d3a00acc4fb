/**
 * WebSocket transport: publishes and subscribes through a coalmine relay (relay.ts, `coalmine relay`).
 *
 * URL: ws://HOST:PORT[/PATH][?OPTIONS], or wss:// for a relay behind a TLS-terminating proxy (the system's
 * CAs apply; add one with NODE_EXTRA_CA_CERTS).
 * Options (query parameters):
 *   connectTimeoutMs  WebSocket handshake plus the relay's hello frame, per attempt (default 10000)
 *   maxInFlight       publishes awaiting the relay's ack; more are rejected with `rejected` (default 10000)
 *   maxBufferedBytes  bytes queued on the socket; publishes beyond are rejected with `rejected` (default 16 MiB)
 *   queue             messages one subscription holds before dropping its oldest (default 100000)
 * Stamps:
 *   PublishReceipt.ackNs  our clock when the relay's ack arrived; the relay acks once it has fanned the
 *                         message out to every subscriber's socket, so ackNs - send time is a round trip
 *   Delivery.brokerNs     the relay's wall clock when it received the publish: its per-hop stamp
 * publish() rejects with not_connected while the relay is unreachable; nothing is buffered across outages.
 */
import { connectHint } from '../connect-hint.js';
import { WebSocket, type RawData } from 'ws';
import { DeliveryQueue, StatusHub, backoffMs, errorMessage, redactUrl, wallClockNs } from '../base.js';
import {
  TransportError,
  type Delivery,
  type PublishOptions,
  type PublishReceipt,
  type Transport,
  type TransportOptions,
} from '../transport.js';
import { valueOrThrow } from '../url-options.js';
import { readWebSocketUrl } from './url.js';
import { ChannelSubscribers } from '../subscriptions.js';
import { CHANNEL_PATTERN, RELAY_PROTOCOL_VERSION } from './relay.js';

export { startRelay, type Relay, type RelayOptions, type RelayStats } from './relay.js';

interface Pending {
  resolve(receipt: PublishReceipt): void;
  reject(err: TransportError): void;
  timer: NodeJS.Timeout;
}

interface Subscription {
  queue: DeliveryQueue<Delivery>;
  /** Set when the relay refused the subscription; the iterator throws it after ending. */
  failure?: TransportError;
}

interface Hello {
  hop: string;
  maxPayload: number;
  heartbeatMs: number;
}

export class WebSocketTransport implements Transport {
  readonly kind = 'websocket';
  readonly textOnly = false;
  readonly displayUrl: string;
  /** The relay's hop id, from its hello frame (undefined before the first connection). */
  relayHop: string | undefined;

  private readonly url: string;
  private readonly hub = new StatusHub();
  private readonly wallNs: () => bigint;
  private readonly reconnectMs: { initialMs?: number; maxMs?: number };
  private readonly connectTimeoutMs: number;
  private readonly maxInFlight: number;
  private readonly maxBufferedBytes: number;
  private readonly queueBound: number;
  /** Aborted by close(), cancelling dials and backoff waits. */
  private readonly lifetime = new AbortController();

  private ws: WebSocket | undefined;
  private relayMaxPayload = 1024 * 1024;
  private deadTimer: NodeJS.Timeout | undefined;
  private deadAfterMs = 35_000;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private started = false;
  private dialling = false;
  private connecting: Promise<void> | undefined;
  private closed = false;
  private nextId = 1n;
  private readonly pending = new Map<bigint, Pending>();
  private readonly subs = new ChannelSubscribers<Subscription>();

  constructor(url: string, opts: TransportOptions = {}) {
    const cfg = valueOrThrow(url, readWebSocketUrl(url));
    this.connectTimeoutMs = cfg.connectTimeoutMs;
    this.maxInFlight = cfg.maxInFlight;
    this.maxBufferedBytes = cfg.maxBufferedBytes;
    this.queueBound = cfg.queue;
    this.url = cfg.url;
    this.displayUrl = redactUrl(url);
    this.wallNs = opts.wallNs ?? wallClockNs;
    this.reconnectMs = opts.reconnect ?? {};
  }

  get state() {
    return this.hub.state;
  }

  status() {
    return this.hub.stream();
  }

  connect(signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new TransportError('closed', 'transport is closed'));
    // Once connected, the transport keeps itself connected; a concurrent or later connect() shares the first.
    if (!this.connecting || (!this.started && this.hub.state === 'disconnected' && !this.dialling)) {
      this.connecting = this.firstConnect(signal);
    }
    return this.connecting;
  }

  private async firstConnect(signal?: AbortSignal): Promise<void> {
    if (this.closed) throw new TransportError('closed', 'transport is closed');
    this.dialling = true;
    this.hub.set({ type: 'connecting' });
    let ws: WebSocket;
    try {
      ws = await this.dial(signal);
    } catch (err) {
      this.dialling = false;
      if (this.closed)
        throw new TransportError('closed', 'transport was closed while connecting', { cause: err });
      this.hub.set({ type: 'disconnected', error: errorMessage(err) });
      const port = new URL(this.url).port || (this.url.startsWith('wss:') ? '443' : '80');
      throw new TransportError(
        'not_connected',
        `cannot connect to ${this.displayUrl}: ${errorMessage(err)} — ${connectHint(err, {
          server: 'a coalmine relay',
          start: `coalmine relay --listen HOST:${port}`,
          credentials: 'URL',
          isAuthFailure: (e) => /Unexpected server response: 40[13]/.test(errorMessage(e)),
        })}`,
        { cause: err },
      );
    }
    this.dialling = false;
    this.started = true;
    this.attach(ws);
  }

  async publish(channel: string, payload: Uint8Array, opts: PublishOptions = {}): Promise<PublishReceipt> {
    if (this.closed) throw new TransportError('closed', 'transport is closed');
    if (!CHANNEL_PATTERN.test(channel)) {
      throw new TransportError(
        'rejected',
        `invalid channel ${JSON.stringify(channel)}: use 1-255 of [A-Za-z0-9_.-]`,
      );
    }
    if (payload.length > this.relayMaxPayload) {
      throw new TransportError(
        'too_large',
        `payload of ${payload.length} bytes is over the relay's ${this.relayMaxPayload}`,
      );
    }
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      throw new TransportError('not_connected', `not connected to ${this.displayUrl} (${this.hub.state})`);
    }
    if (this.pending.size >= this.maxInFlight) {
      throw new TransportError('rejected', `${this.pending.size} publishes already await the relay's ack`);
    }
    if (ws.bufferedAmount > this.maxBufferedBytes) {
      throw new TransportError('rejected', `${ws.bufferedAmount} bytes already queued to the relay`);
    }
    const id = this.nextId++;
    const frame = Buffer.allocUnsafe(1 + channel.length + 8 + payload.length);
    frame[0] = channel.length;
    frame.write(channel, 1, 'latin1');
    frame.writeBigUInt64BE(id, 1 + channel.length);
    frame.set(payload, 1 + channel.length + 8);
    const timeoutMs = opts.timeoutMs ?? 5000;
    return new Promise<PublishReceipt>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new TransportError('timeout', `no ack from the relay at ${this.displayUrl} within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(frame, { binary: true }, (err) => {
        if (err)
          this.settle(id, new TransportError('not_connected', `send failed: ${err.message}`, { cause: err }));
      });
    });
  }

  subscribe(channel: string, signal: AbortSignal): AsyncIterable<Delivery> {
    const sub: Subscription = { queue: new DeliveryQueue<Delivery>(this.queueBound) };
    const iterate = async function* () {
      yield* sub.queue;
      if (sub.failure) throw sub.failure;
    };
    if (this.closed || signal.aborted) {
      sub.queue.end();
      return { [Symbol.asyncIterator]: iterate };
    }
    if (!CHANNEL_PATTERN.test(channel)) {
      sub.failure = new TransportError('rejected', `invalid channel ${JSON.stringify(channel)}`);
      sub.queue.end();
      return { [Symbol.asyncIterator]: iterate };
    }
    if (this.subs.add(channel, sub)) this.sendControl({ op: 'sub', channel });
    signal.addEventListener(
      'abort',
      () => {
        sub.queue.end();
        if (this.subs.remove(channel, sub)) this.sendControl({ op: 'unsub', channel });
      },
      { once: true },
    );
    return { [Symbol.asyncIterator]: iterate };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.lifetime.abort();
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.deadTimer);
    for (const id of [...this.pending.keys()])
      this.settle(id, new TransportError('closed', 'transport closed'));
    for (const sub of this.subs.clear()) sub.queue.end();
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      // A polite close frame, but never wait on a relay that does not answer it.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => ws.terminate(), 1000);
        ws.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        ws.close(1000, 'client closing');
      });
    }
    this.hub.set({ type: 'closed' });
  }

  /** Opens a WebSocket and waits for the relay's hello; rejects with the reason it could not. */
  private dial(signal?: AbortSignal): Promise<WebSocket> {
    return new Promise<WebSocket>((resolve, reject) => {
      const signals = signal ? [signal, this.lifetime.signal] : [this.lifetime.signal];
      const abort = AbortSignal.any(signals);
      const ws = new WebSocket(this.url, {
        handshakeTimeout: this.connectTimeoutMs,
        perMessageDeflate: false,
      });
      let settled = false;
      const done = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        abort.removeEventListener('abort', onAbort);
        if (err) {
          ws.terminate();
          reject(err);
        } else {
          ws.removeAllListeners('close');
          ws.removeAllListeners('message');
          resolve(ws);
        }
      };
      const onAbort = () => done(new Error(`aborted: ${errorMessage(abort.reason)}`));
      const timer = setTimeout(
        () => done(new Error(`no hello from the relay within ${this.connectTimeoutMs} ms`)),
        this.connectTimeoutMs,
      );
      if (abort.aborted) return onAbort();
      abort.addEventListener('abort', onAbort, { once: true });
      // Stays attached for the socket's life: errors are always followed by 'close', handled in attach().
      ws.on('error', (err) => done(err));
      ws.on('close', (code, reason) =>
        done(new Error(`closed by the server (${code} ${reason.toString()})`)),
      );
      ws.once('message', (data: RawData, isBinary: boolean) => {
        const hello = isBinary ? undefined : parseHello(rawToBuffer(data).toString('utf8'));
        if (!hello)
          return done(new Error('the server is not a coalmine relay (its first frame is not a hello)'));
        this.relayHop = hello.hop;
        this.relayMaxPayload = hello.maxPayload;
        this.deadAfterMs = 2 * hello.heartbeatMs + 5000;
        done();
      });
    });
  }

  /** Takes a dialled socket into service: routes frames, re-subscribes, watches for its loss. */
  private attach(ws: WebSocket): void {
    if (this.closed) {
      ws.terminate();
      return;
    }
    this.ws = ws;
    this.attempt = 0;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      this.armDeadTimer(ws);
      const buf = rawToBuffer(data);
      if (isBinary) this.onDelivery(buf);
      else this.onControl(buf.toString('utf8'));
    });
    ws.on('ping', () => this.armDeadTimer(ws));
    ws.on('close', (code, reason) =>
      this.onLost(ws, `connection closed (${code}${reason.length ? ` ${reason}` : ''})`),
    );
    this.armDeadTimer(ws);
    for (const channel of this.subs.channels()) this.sendControl({ op: 'sub', channel });
    this.hub.set({ type: 'connected' });
  }

  /** The relay pings every heartbeatMs; silence for two of them means the path is dead even if TCP has not noticed. */
  private armDeadTimer(ws: WebSocket): void {
    clearTimeout(this.deadTimer);
    // A frame that arrives after close() or after this socket was replaced must not re-arm the timer:
    // it would keep the process alive for deadAfterMs (about 35 s) once everything else has ended.
    if (this.closed || this.ws !== ws) return;
    this.deadTimer = setTimeout(() => ws.terminate(), this.deadAfterMs);
  }

  private onLost(ws: WebSocket, error: string): void {
    if (this.ws !== ws || this.closed) return;
    this.ws = undefined;
    clearTimeout(this.deadTimer);
    for (const id of [...this.pending.keys()]) {
      this.settle(id, new TransportError('not_connected', `relay connection lost before its ack (${error})`));
    }
    this.hub.set({ type: 'disconnected', error });
    this.scheduleReconnect(error);
  }

  private scheduleReconnect(error: string): void {
    if (this.closed) return;
    const delayMs = backoffMs(this.attempt, this.reconnectMs.initialMs, this.reconnectMs.maxMs);
    this.attempt++;
    this.hub.set({ type: 'reconnecting', attempt: this.attempt, delayMs, error });
    this.reconnectTimer = setTimeout(() => {
      this.dial().then(
        (ws) => this.attach(ws),
        (err: unknown) => this.scheduleReconnect(errorMessage(err)),
      );
    }, delayMs);
  }

  private onDelivery(buf: Buffer): void {
    const len = buf[0] ?? 0;
    if (len === 0 || buf.length < 1 + len + 8) return;
    const receivedNs = this.wallNs();
    const channel = buf.toString('latin1', 1, 1 + len);
    const set = this.subs.get(channel);
    if (!set) return;
    const delivery: Delivery = {
      payload: buf.subarray(1 + len + 8),
      receivedNs,
      brokerNs: buf.readBigUInt64BE(1 + len),
    };
    for (const s of set) s.queue.push(delivery);
  }

  private onControl(text: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    const id = typeof msg.id === 'string' && /^\d+$/.test(msg.id) ? BigInt(msg.id) : undefined;
    if (msg.op === 'ack' && id !== undefined) {
      const p = this.pending.get(id);
      if (!p) return; // already timed out
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.resolve({ ackNs: this.wallNs() });
    } else if (msg.op === 'error') {
      const text = `relay refused: ${String(msg.message ?? msg.code)}`;
      if (id !== undefined) {
        this.settle(id, new TransportError(msg.code === 'too_large' ? 'too_large' : 'rejected', text));
      } else if (typeof msg.channel === 'string') {
        // A refused subscription ends its iterators with the reason, rather than leaving them silent forever.
        for (const s of this.subs.drop(msg.channel)) {
          s.failure = new TransportError('rejected', text);
          s.queue.end();
        }
      }
    }
  }

  private settle(id: bigint, err: TransportError): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.reject(err);
  }

  private sendControl(frame: { op: 'sub' | 'unsub'; channel: string }): void {
    // When not connected, attach() sends every current subscription on the next connection.
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }
}

function rawToBuffer(data: RawData): Buffer {
  return Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

function parseHello(text: string): Hello | undefined {
  try {
    const m = JSON.parse(text) as Record<string, unknown>;
    if (m.op !== 'hello' || m.version !== RELAY_PROTOCOL_VERSION) return undefined;
    if (typeof m.maxPayload !== 'number' || typeof m.heartbeatMs !== 'number') return undefined;
    return { hop: String(m.hop ?? ''), maxPayload: m.maxPayload, heartbeatMs: m.heartbeatMs };
  } catch {
    return undefined;
  }
}

export function create(url: string, opts?: TransportOptions): Transport {
  return new WebSocketTransport(url, opts);
}
