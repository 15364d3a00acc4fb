/**
 * Webhook transport: the canary POSTs each ping to the coalminer's HTTP endpoint.
 *
 * URL: http(s)://PEER_HOST:PEER_PORT[/BASE][?OPTIONS]
 *   publish(channel)   POSTs the payload (application/octet-stream) to <peer>/BASE/<channel>
 *   subscribe(channel) serves POST http://<listen>/BASE/<channel> on this transport's own HTTP server
 *   The server answers 204 (delivered), 202 (valid, but nobody subscribes to that channel: dropped, as on any
 *   pub/sub system), 404 (path outside BASE or not a channel name), 405 (not POST), 415 (not
 *   application/octet-stream), 413 (body over maxBody).
 * Options (query parameters):
 *   listen        HOST:PORT this transport's server listens on (plain HTTP). Defaults to the peer's own
 *                 host:port when the peer is http:// on loopback, so one URL serves both sides in one process
 *                 (transports naming the same address share one server). `none`: publish only.
 *   maxBody       largest body the server accepts, in bytes; more is answered 413 (default 1 MiB)
 *   maxSockets    keep-alive connections to the peer (default 64)
 *   maxInFlight   publishes awaiting a response; more are rejected with `rejected` (default 10000)
 *   queue         messages one subscription holds before dropping its oldest (default 100000)
 * Two processes name each other: canary `http://B:9401?listen=A:9400`, coalminer `http://A:9400?listen=B:9401`.
 *
 * PublishReceipt.ackNs is our clock when the peer's 2xx response arrived: the coalminer took the message.
 * Non-2xx → rejected (413 → too_large), connection refused → not_connected, no response in time → timeout.
 * There is no broker, so no brokerNs.
 * Status: `connected` once the server listens (the peer need not be up yet: each side may start first). A
 * publish that cannot reach the peer (refused, or reset before an answer) makes it `disconnected`, then
 * `reconnecting` while the transport asks the peer for any HTTP answer with backoff; the first answer or
 * successful POST makes it `connected` again. Publishes are
 * attempted in every state (each POST is its own connection attempt) and nothing is buffered.
 */
import {
  Agent as HttpAgent,
  request as httpRequest,
  type ClientRequest,
  type IncomingMessage,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
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
import { readWebhookUrl } from './url.js';
import { CHANNEL_PATTERN, WebhookListener } from './listener.js';

/**
 * Errors meaning the peer could not be reached, or dropped the connection before answering: either way the
 * path is down, as a broker connection lost before its ack is for the other transports.
 */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

export class WebhookTransport implements Transport {
  readonly kind = 'webhook';
  readonly textOnly = false;
  readonly displayUrl: string;

  private readonly peer: URL;
  private readonly base: string;
  private readonly listenAt: { host: string; port: number } | undefined;
  private readonly maxBody: number;
  private readonly maxInFlight: number;
  private readonly queueBound: number;
  private readonly agent: HttpAgent;
  private readonly hub = new StatusHub();
  private readonly wallNs: () => bigint;
  private readonly reconnectMs: { initialMs?: number; maxMs?: number };

  private listener: WebhookListener | undefined;
  private connecting: Promise<void> | undefined;
  private closed = false;
  private inFlight = new Set<ClientRequest>();
  private probeTimer: NodeJS.Timeout | undefined;
  private probeAttempt = 0;
  private probe: ClientRequest | undefined;
  private started = false;
  /** Subscriptions made before connect(), routed once the server is up. */
  private readonly routes = new Map<
    { channel: string; queue: DeliveryQueue<Delivery> },
    (() => void) | undefined
  >();

  constructor(url: string, opts: TransportOptions = {}) {
    const cfg = valueOrThrow(url, readWebhookUrl(url));
    const u = cfg.peer;
    this.listenAt = cfg.listen;
    this.maxBody = cfg.maxBody;
    this.maxInFlight = cfg.maxInFlight;
    this.queueBound = cfg.queue;
    const maxSockets = cfg.maxSockets;
    this.peer = u;
    this.base = u.pathname.replace(/\/+$/, '');
    this.displayUrl = redactUrl(url);
    this.wallNs = opts.wallNs ?? wallClockNs;
    this.reconnectMs = opts.reconnect ?? {};
    // Idle sockets are dropped after 4 s, before a Node peer's 5 s keep-alive timeout closes them under us.
    const agentOpts = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, timeout: 4000 };
    this.agent = u.protocol === 'https:' ? new HttpsAgent(agentOpts) : new HttpAgent(agentOpts);
  }

  get state() {
    return this.hub.state;
  }

  /** Where this transport receives webhooks, once connected (the real port when listen asked for 0). */
  get listenAddress(): { host: string; port: number } | undefined {
    return this.listener ? { host: this.listener.host, port: this.listener.port } : undefined;
  }

  status() {
    return this.hub.stream();
  }

  connect(signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new TransportError('closed', 'transport is closed'));
    // After a failed start, connect() tries again; once started, the state only follows the peer.
    if (!this.connecting || (!this.started && this.hub.state === 'disconnected'))
      this.connecting = this.start(signal);
    return this.connecting;
  }

  private async start(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.hub.set({ type: 'connecting' });
    if (this.listenAt && !this.listener) {
      const { host, port } = this.listenAt;
      try {
        this.listener = await WebhookListener.acquire(host, port, { base: this.base, maxBody: this.maxBody });
      } catch (err) {
        this.hub.set({ type: 'disconnected', error: errorMessage(err) });
        throw new TransportError(
          'not_connected',
          `cannot listen for webhooks on ${host}:${port}: ${errorMessage(err)}${
            (err as NodeJS.ErrnoException).code === 'EADDRINUSE'
              ? ' — is another process using that port? Choose another with ?listen=HOST:PORT'
              : ''
          }`,
          { cause: err },
        );
      }
      if (this.closed) {
        await this.listener.release();
        throw new TransportError('closed', 'transport was closed while connecting');
      }
      for (const [sub, remove] of this.routes) {
        if (!remove)
          this.routes.set(
            sub,
            this.listener.addRoute(sub.channel, { queue: sub.queue, wallNs: this.wallNs }),
          );
      }
    }
    this.started = true;
    this.hub.set({ type: 'connected' });
  }

  async publish(channel: string, payload: Uint8Array, opts: PublishOptions = {}): Promise<PublishReceipt> {
    if (this.closed) throw new TransportError('closed', 'transport is closed');
    if (!this.started) {
      throw new TransportError('not_connected', 'connect() the webhook transport before publishing');
    }
    if (!CHANNEL_PATTERN.test(channel)) {
      throw new TransportError(
        'rejected',
        `invalid channel ${JSON.stringify(channel)}: use 1-255 of [A-Za-z0-9_.-]`,
      );
    }
    if (this.inFlight.size >= this.maxInFlight) {
      throw new TransportError('rejected', `${this.inFlight.size} webhook requests already in flight`);
    }
    const deadline = Date.now() + (opts.timeoutMs ?? 5000);
    try {
      const receipt = await this.post(channel, payload, deadline, true);
      this.markUp();
      return receipt;
    } catch (err) {
      if (err instanceof TransportError && err.code === 'not_connected') this.markDown(err.message);
      throw err;
    }
  }

  /** One POST; a keep-alive socket the peer closed just as we reused it is retried once on a fresh one. */
  private post(
    channel: string,
    payload: Uint8Array,
    deadline: number,
    mayRetry: boolean,
  ): Promise<PublishReceipt> {
    const target = `${this.peer.origin}${this.base}/${channel}`;
    return new Promise<PublishReceipt>((resolve, reject) => {
      const request = this.peer.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = request(`${this.peer.protocol}//${this.peer.host}${this.base}/${channel}`, {
        method: 'POST',
        agent: this.agent,
        auth: this.peer.username
          ? `${decodeURIComponent(this.peer.username)}:${decodeURIComponent(this.peer.password)}`
          : undefined,
        headers: { 'content-type': 'application/octet-stream', 'content-length': payload.length },
      });
      this.inFlight.add(req);
      let settled = false;
      const finish = (result: PublishReceipt | TransportError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.inFlight.delete(req);
        if (result instanceof TransportError) reject(result);
        else resolve(result);
      };
      const timeoutMs = Math.max(0, deadline - Date.now());
      const timer = setTimeout(() => {
        finish(new TransportError('timeout', `no response from ${target} within ${timeoutMs} ms`));
        req.destroy();
      }, timeoutMs);
      req.on('response', (res: IncomingMessage) => {
        const ackNs = this.wallNs();
        res.on('error', () => {});
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          res.resume(); // frees the socket for the next request
          return finish({ ackNs });
        }
        // The peer's explanation, bounded, for the error message.
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (s: string) => {
          if (body.length < 300) body += s;
        });
        res.on('end', () => {
          const code = status === 413 ? 'too_large' : 'rejected';
          const text = body.trim().slice(0, 300);
          finish(
            new TransportError(code, `${target} answered ${status}${text ? `: ${text}` : ''}`, {
              cause: { status },
            }),
          );
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (settled) return;
        if (this.closed) return finish(new TransportError('closed', 'transport closed', { cause: err }));
        if (mayRetry && req.reusedSocket && err.code === 'ECONNRESET') {
          settled = true;
          clearTimeout(timer);
          this.inFlight.delete(req);
          this.post(channel, payload, deadline, false).then(resolve, reject);
          return;
        }
        const code = err.code && UNREACHABLE.has(err.code) ? 'not_connected' : 'error';
        finish(
          new TransportError(code, `cannot POST to ${target}: ${err.code ?? err.message}`, { cause: err }),
        );
      });
      req.end(payload);
    });
  }

  subscribe(channel: string, signal: AbortSignal): AsyncIterable<Delivery> {
    const queue = new DeliveryQueue<Delivery>(this.queueBound);
    let failure: TransportError | undefined;
    const iterate = async function* () {
      yield* queue;
      if (failure) throw failure;
    };
    if (!this.listenAt) {
      failure = new TransportError(
        'rejected',
        `${this.displayUrl} only publishes (listen=none): nothing can be received`,
      );
    } else if (!CHANNEL_PATTERN.test(channel)) {
      failure = new TransportError('rejected', `invalid channel ${JSON.stringify(channel)}`);
    }
    if (failure || this.closed || signal.aborted) {
      queue.end();
      return { [Symbol.asyncIterator]: iterate };
    }
    const sub = { channel, queue };
    this.routes.set(sub, this.listener?.addRoute(channel, { queue, wallNs: this.wallNs }));
    signal.addEventListener(
      'abort',
      () => {
        this.routes.get(sub)?.();
        this.routes.delete(sub);
        queue.end();
      },
      { once: true },
    );
    return { [Symbol.asyncIterator]: iterate };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.probeTimer);
    const probe = this.probe;
    this.probe = undefined;
    probe?.destroy();
    for (const req of this.inFlight) req.destroy();
    for (const [sub, remove] of this.routes) {
      remove?.();
      sub.queue.end();
    }
    this.routes.clear();
    this.agent.destroy();
    await this.listener?.release();
    this.listener = undefined;
    this.hub.set({ type: 'closed' });
  }

  private markUp(): void {
    if (this.closed || this.hub.state === 'connected') return;
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.probeAttempt = 0;
    this.hub.set({ type: 'connected' });
  }

  private markDown(error: string): void {
    if (this.closed || this.hub.state !== 'connected') return;
    this.hub.set({ type: 'disconnected', error });
    this.scheduleProbe(error);
  }

  /**
   * While the peer is unreachable, asks it with backoff for any HTTP answer (a HEAD of the base path; even a
   * 404 proves it is up), so the status recovers without waiting for the next publish.
   */
  private scheduleProbe(error: string): void {
    if (this.closed || this.hub.state === 'connected') return;
    const delayMs = backoffMs(this.probeAttempt, this.reconnectMs.initialMs, this.reconnectMs.maxMs);
    this.probeAttempt++;
    this.hub.set({ type: 'reconnecting', attempt: this.probeAttempt, delayMs, error });
    this.probeTimer = setTimeout(() => {
      const request = this.peer.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = request(`${this.peer.protocol}//${this.peer.host}${this.base}/`, {
        method: 'HEAD',
        agent: false,
      });
      this.probe = req;
      const done = (err?: string) => {
        if (this.probe !== req) return;
        this.probe = undefined;
        req.destroy();
        if (err === undefined) this.markUp();
        else this.scheduleProbe(err);
      };
      req.setTimeout(5000, () => done('no answer within 5000 ms'));
      req.on('response', (res) => {
        res.resume();
        done();
      });
      req.on('error', (e: NodeJS.ErrnoException) =>
        done(`cannot reach ${this.peer.host}: ${e.code ?? e.message}`),
      );
      req.end();
    }, delayMs);
  }
}

export function create(url: string, opts?: TransportOptions): Transport {
  return new WebhookTransport(url, opts);
}
