/**
 * MQTT transport (MQTT 5 by default, 3.1.1 on request), e.g. Mosquitto, EMQX, HiveMQ.
 *
 *   mqtt[s]://[user:pass@]host:port?qos=1&clean=true&clientId=...
 *
 * Query options:
 *   qos=0|1|2           publish and subscribe QoS (default 1).
 *   clean=true|false    clean start (default true). With false the broker keeps the session (subscriptions and
 *                       QoS 1/2 messages for us) across reconnects; it needs a stable clientId or a client name.
 *   clientId=ID         MQTT client id (default `coalmine-<clientName>-<random>`, or `coalmine-<clientName>`
 *                       when clean=false).
 *   version=5|4         protocol level: 5 (MQTT 5, default) or 4 (MQTT 3.1.1).
 *   keepalive=S         keepalive in seconds (default 10), so a silent broker is noticed in ~1.5 × S.
 *   sessionExpiry=S     MQTT 5 session expiry with clean=false (default 3600).
 *   connectTimeoutMs=N  TCP + CONNACK timeout (default 5000).
 *   mqtts:// only: ca=, cert=, key=, servername=, insecure= (tls-options.ts); any scheme: passwordEnv=NAME.
 *
 * Topic = the logical channel with `.` replaced by `/` (`coalmine.coalminer.eu-1` → `coalmine/coalminer/eu-1`).
 *
 * ackNs: when the PUBACK (QoS 1) or PUBCOMP (QoS 2) arrived; QoS 0 has no acknowledgement, so undefined.
 * brokerNs: MQTT brokers stamp nothing, so undefined.
 *
 * Reconnects are ours, not mqtt.js's (reconnectPeriod 0): its fixed period has no backoff or jitter and its
 * events carry no attempt or delay. Each attempt is a fresh client. mqtt.js would also buffer publishes while
 * offline and replay them later; a canary must see that outage as send errors, so publishing while
 * disconnected rejects with not_connected (queueQoSZero is off too), and publishes in flight when the
 * connection drops reject with not_connected: whether the broker got them is unknown, and the canary's
 * sequence numbers tell.
 */
import mqtt from 'mqtt';
import type { IClientOptions, IClientPublishOptions, MqttClient } from 'mqtt';
import { DeliveryQueue, errorMessage, redactUrl, StatusHub, wallClockNs } from '../base.js';
import { withTimeout } from '../timeouts.js';
import { parseMqttUrl, type MqttConfig } from './url.js';
export { checkUrl, parseMqttUrl, type MqttConfig } from './url.js';
import { ReconnectLoop } from '../reconnect-loop.js';
import { ChannelSubscribers, subscriptionQueue } from '../subscriptions.js';
import {
  TransportError,
  type Delivery,
  type PublishOptions,
  type PublishReceipt,
  type Transport,
  type TransportOptions,
} from '../transport.js';

const noop = () => {};

/** MQTT 5 reason codes that mean "the message is too big" (0x95 packet too large, 0x97 quota exceeded is not). */
const PACKET_TOO_LARGE = 0x95;

interface PendingPublish {
  client: MqttClient;
  fail(err: TransportError): void;
}

/**
 * MQTT 5 flow control, which mqtt.js leaves to us: at most the broker's Receive Maximum QoS 1/2 publishes
 * unacknowledged at once (Mosquitto answers the 21st QoS 2 publish with "Quota exceeded"). The rest wait here,
 * in order, within their own timeout. One per connection.
 */
interface SendWindow {
  size: number;
  inflight: number;
  waiting: (() => void)[];
}
const MAX_WAITING = 10_000;

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class MqttTransport implements Transport {
  readonly kind = 'mqtt';
  readonly textOnly = false;
  readonly displayUrl: string;
  readonly cfg: MqttConfig;
  private readonly hub = new StatusHub();
  private readonly wallNs: () => bigint;
  /** The client everything currently runs on; set once connected and resubscribed. */
  private live: MqttClient | undefined;
  private window: SendWindow = { size: 0, inflight: 0, waiting: [] };
  /** Subscribers by MQTT topic: one broker subscription per topic, fanned out here. */
  private readonly topics = new ChannelSubscribers<DeliveryQueue<Delivery>>();
  private readonly pending = new Set<PendingPublish>();
  private readonly loop: ReconnectLoop;
  private closed = false;

  constructor(url: string, opts: TransportOptions = {}) {
    this.cfg = parseMqttUrl(url, opts.clientName);
    this.displayUrl = redactUrl(url);
    this.wallNs = opts.wallNs ?? wallClockNs;
    this.loop = new ReconnectLoop({
      hub: this.hub,
      displayUrl: this.displayUrl,
      hints: {
        server: 'the MQTT broker',
        start: 'mosquitto',
        credentials: 'user and password',
        // CONNACK 4/5 (MQTT 3.1.1) and 134/135 (MQTT 5): bad user name or password, not authorised.
        isAuthFailure: (err) => /bad user ?name or password|not authori[sz]ed/i.test(errorText(err)),
        tls: this.cfg.tls ? { secure: true, otherScheme: 'mqtt' } : { secure: false, otherScheme: 'mqtts' },
      },
      initialMs: opts.reconnect?.initialMs ?? 100,
      maxMs: opts.reconnect?.maxMs ?? 5000,
      open: (signal) => this.open(signal),
      isClosed: () => this.closed,
      isLive: () => this.live !== undefined,
    });
  }

  get state() {
    return this.hub.state;
  }

  connect(signal?: AbortSignal): Promise<void> {
    return this.loop.connect(signal);
  }

  private clientOptions(): IClientOptions {
    return {
      clientId: this.cfg.clientId,
      username: this.cfg.username,
      password: this.cfg.password,
      ...this.cfg.tls,
      protocolVersion: this.cfg.version,
      clean: this.cfg.clean,
      keepalive: this.cfg.keepalive,
      connectTimeout: this.cfg.connectTimeoutMs,
      reconnectPeriod: 0, // we reconnect ourselves, with backoff and truthful status
      queueQoSZero: false,
      resubscribe: false, // every reconnect is a fresh client that we resubscribe
      ...(this.cfg.version === 5 && !this.cfg.clean
        ? { properties: { sessionExpiryInterval: this.cfg.sessionExpiry } }
        : {}),
    };
  }

  /** One connection attempt: resolves with a client that got its CONNACK, or rejects and leaves nothing open. */
  private dial(signal?: AbortSignal): Promise<{ client: MqttClient; receiveMaximum: number }> {
    signal?.throwIfAborted();
    const client = mqtt.connect(this.cfg.url, this.clientOptions());
    let lastError: Error | undefined;
    // The client emits 'error' for socket and protocol failures; it must never go unheard.
    client.on('error', (err: Error) => (lastError = err));
    // Listening from the start: a persistent session's kept messages follow the CONNACK in the same read.
    client.on('message', (topic, payload) => this.dispatch(topic, payload));
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        client.off('connect', onConnect);
        client.off('close', onClose);
        client.off('error', onError);
        signal?.removeEventListener('abort', onAbort);
      };
      const fail = (err: Error) => {
        cleanup();
        client.end(true, noop);
        reject(err);
      };
      const onConnect = (connack: { properties?: { receiveMaximum?: number } }) => {
        cleanup();
        // 65535 is the MQTT 5 default and, for 3.1.1, effectively no window.
        resolve({ client, receiveMaximum: connack.properties?.receiveMaximum ?? 65_535 });
      };
      const onError = (err: Error) => fail(err);
      const onClose = () => fail(lastError ?? new Error('connection closed before CONNACK'));
      const onAbort = () =>
        fail(
          new TransportError('timeout', `connecting to ${this.displayUrl} was aborted`, {
            cause: signal?.reason,
          }),
        );
      client.on('connect', onConnect);
      client.on('close', onClose);
      client.on('error', onError);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Connects, resubscribes every topic (waiting for the SUBACK), then reports connected. */
  private async open(signal?: AbortSignal): Promise<void> {
    const { client, receiveMaximum } = await this.dial(signal);
    let lost = false;
    let lastError: string | undefined;
    client.on('error', (err: Error) => (lastError = err.message));
    client.on('disconnect', (packet: { reasonCode?: number }) => {
      lastError = `broker sent DISCONNECT (reason ${packet.reasonCode ?? 0})`;
    });
    client.on('close', () => {
      lost = true;
      this.onConnectionLost(client, lastError ?? 'connection closed');
    });
    const topics = this.topics.channels();
    try {
      if (topics.length > 0) {
        await withTimeout(
          client.subscribeAsync(Object.fromEntries(topics.map((t) => [t, { qos: this.cfg.qos }]))),
          this.cfg.connectTimeoutMs,
          () => new Error(`no SUBACK within ${this.cfg.connectTimeoutMs} ms`),
        );
      }
      if (lost) throw new Error(lastError ?? 'connection closed while subscribing');
      if (this.closed) throw new TransportError('closed', 'transport closed while connecting');
    } catch (err) {
      client.end(true, noop);
      throw err;
    }
    this.live = client;
    this.window = { size: receiveMaximum, inflight: 0, waiting: [] };
    this.loop.connected();
    // Topics added while the SUBSCRIBE above was in flight.
    const late = this.topics.channels().filter((t) => !topics.includes(t));
    if (late.length > 0) client.subscribe(late, { qos: this.cfg.qos }, noop);
  }

  private onConnectionLost(client: MqttClient, error: string): void {
    for (const p of this.pending) {
      if (p.client === client)
        p.fail(new TransportError('not_connected', `connection to ${this.displayUrl} lost: ${error}`));
    }
    client.end(true, noop); // drops mqtt.js's own store of unacknowledged publishes
    if (this.live !== client) return; // a client that never got up: open() reports that
    this.live = undefined;
    if (this.closed) return;
    this.loop.lost(error);
  }

  private dispatch(topic: string, payload: Buffer): void {
    const subs = this.topics.get(topic);
    if (!subs) return;
    const receivedNs = this.wallNs();
    for (const q of subs) q.push({ payload, receivedNs });
  }

  publish(channel: string, payload: Uint8Array, opts?: PublishOptions): Promise<PublishReceipt> {
    if (this.closed) return Promise.reject(new TransportError('closed', 'transport is closed'));
    const client = this.live;
    // mqtt.js would queue it while offline and send it later; we want the outage to show.
    if (!client || !client.connected) {
      return Promise.reject(new TransportError('not_connected', `not connected to ${this.displayUrl}`));
    }
    const timeoutMs = opts?.timeoutMs ?? 5000;
    const qos = this.cfg.qos;
    const window = this.window;
    if (qos > 0 && window.waiting.length >= MAX_WAITING) {
      return Promise.reject(
        new TransportError(
          'error',
          `more than ${MAX_WAITING} publishes waiting for ${this.displayUrl} to acknowledge`,
        ),
      );
    }
    return new Promise<PublishReceipt>((resolve, reject) => {
      let settled = false;
      const entry: PendingPublish = { client, fail: (err) => settle(() => reject(err)) };
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.pending.delete(entry);
        fn();
      };
      const timer = setTimeout(
        () =>
          settle(() =>
            reject(
              new TransportError(
                'timeout',
                `no ${qos === 2 ? 'PUBCOMP' : qos === 1 ? 'PUBACK' : 'write'} from ${this.displayUrl} within ${timeoutMs} ms`,
              ),
            ),
          ),
        timeoutMs,
      );
      this.pending.add(entry);
      const options: IClientPublishOptions = { qos };
      const content = Buffer.from(payload);
      const send = () => {
        if (settled) return; // timed out or failed while waiting for the window
        if (qos > 0) window.inflight++;
        try {
          client.publish(topicOf(channel), content, options, (err) => {
            // The broker's count drops at its ack, not at our timeout: only then does the slot free up.
            if (qos > 0) this.release(window);
            if (!err) {
              const ackNs = qos === 0 ? undefined : this.wallNs();
              settle(() => resolve(ackNs === undefined ? {} : { ackNs }));
              return;
            }
            settle(() => reject(this.publishError(err)));
          });
        } catch (err) {
          if (qos > 0) this.release(window);
          settle(() =>
            reject(new TransportError('error', `publish failed: ${errorMessage(err)}`, { cause: err })),
          );
        }
      };
      if (qos === 0 || (window.inflight < window.size && window.waiting.length === 0)) send();
      else window.waiting.push(send);
    });
  }

  private release(window: SendWindow): void {
    window.inflight--;
    while (window.inflight < window.size && window.waiting.length > 0) window.waiting.shift()!();
  }

  private publishError(err: Error): TransportError {
    if (this.closed)
      return new TransportError('closed', 'transport closed before the broker acknowledged', { cause: err });
    const reasonCode = (err as { code?: unknown }).code;
    if (typeof reasonCode === 'number') {
      // An MQTT 5 PUBACK/PUBREC with a failure reason: the broker refused it.
      const code = reasonCode === PACKET_TOO_LARGE ? 'too_large' : 'rejected';
      return new TransportError(code, `${this.displayUrl} refused the message: ${err.message}`, {
        cause: err,
      });
    }
    if (/closed|disconnect/i.test(err.message)) {
      return new TransportError('not_connected', `connection to ${this.displayUrl} lost: ${err.message}`, {
        cause: err,
      });
    }
    return new TransportError('error', `publish to ${this.displayUrl} failed: ${err.message}`, {
      cause: err,
    });
  }

  subscribe(channel: string, signal: AbortSignal): AsyncIterable<Delivery> {
    return subscriptionQueue(this.closed, signal, (q) => {
      const topic = topicOf(channel);
      if (this.topics.add(topic, q)) {
        // If this fails the connection is going away, and the reconnect resubscribes.
        this.live?.subscribe(topic, { qos: this.cfg.qos }, noop);
      }
      return () => {
        q.end();
        if (this.topics.remove(topic, q) && this.live?.connected) this.live.unsubscribe(topic, noop);
      };
    });
  }

  status() {
    return this.hub.stream();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.loop.stop();
    for (const q of this.topics.clear()) q.end();
    for (const p of this.pending)
      p.fail(new TransportError('closed', 'transport closed before the broker acknowledged'));
    const client = this.live;
    this.live = undefined;
    // A graceful DISCONNECT when we can, bounded so close() cannot hang on a dead socket.
    if (client) {
      await withTimeout(client.endAsync(false), 2000, () => new Error('no DISCONNECT within 2000 ms')).catch(
        () => client.end(true, noop),
      );
    }
    await this.loop.end();
    this.hub.set({ type: 'closed' });
  }
}

function topicOf(channel: string): string {
  return channel.replace(/\./g, '/');
}

export function create(url: string, opts?: TransportOptions): Transport {
  return new MqttTransport(url, opts);
}
