/**
 * NATS transport, on the `nats` package (v2): core pub/sub or JetStream.
 *
 * URLs: nats://[user:pass@|token@]host:port[,host:port...][?flush=true]
 *       nats+jetstream://[user:pass@|token@]host:port[,...][?stream=COALMINE&maxMsgs=100000]
 *   flush=true        (core) after each publish, await a PING/PONG round trip to the server and report its
 *                     end as ackNs: the server has then read the message (it is not a delivery guarantee).
 *                     Default false: core publish is fire-and-forget, resolves at once, no ackNs.
 *   stream=NAME       (JetStream) stream for channels no stream captures yet: created when missing (file
 *                     storage, limits retention, discard old) and extended with `<first token>.>` of each
 *                     such channel (`coalmine.>` for coalmine.*). A channel another stream already captures
 *                     is consumed from that stream (a subject belongs to one stream only).
 *   maxMsgs=N         (JetStream) max_msgs of a stream this transport creates; default 100000.
 *
 * Channels are subjects (characters outside [A-Za-z0-9_.-] and empty tokens become `_`).
 * JetStream: ackNs is when the PubAck arrived (a PubAck error rejects with 'rejected'); subscriptions use a
 * pull consumer with explicit acks (acked after the message is queued for the reader), named
 * `coalmine_<clientName>_<subject>` and durable when a clientName is given (a restarted coalminer resumes
 * from its ack floor), otherwise a per-transport one removed by the server after an hour idle. A new
 * consumer starts at the time subscribe() was called (deliver policy by_start_time). brokerNs is the
 * stream's own timestamp of the message, from the ack subject (exact ns).
 * Reconnects are nats.js's own (forever, delays from our backoff with jitter), mapped onto status();
 * core subscriptions are resent by nats.js, JetStream consumers are resumed by it or rebuilt by us.
 * While not connected, publish() rejects with not_connected rather than letting nats.js buffer.
 */
import { randomBytes } from 'node:crypto';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  connect as natsConnect,
  credsAuthenticator,
  nanos,
  type ConnectionOptions,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  type NatsError,
  type TlsOptions,
} from 'nats';
import { probeInfo } from './info-probe.js';
import { connectHint, type ConnectHints } from '../connect-hint.js';
import type { TlsSettings } from '../tls-options.js';
import { untilAborted } from '../until-aborted.js';
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
  type TransportErrorCode,
  type TransportOptions,
  type TransportStatus,
} from '../transport.js';
import { parseNatsUrl, streamSubjectFor, subjectFor, type NatsUrl } from './url.js';

/** nats.js's connect timeout, and how long a server may take to send its INFO line. */
const CONNECT_TIMEOUT_MS = 5000;

const HINTS: ConnectHints = {
  server: 'nats-server',
  start: 'nats-server -js for JetStream',
  credentials: 'user and password, token or creds file',
  isAuthFailure: (err) => natsCode(err) === 'AUTHORIZATION_VIOLATION',
};

/**
 * nats.js reports a refused connection as its own CONNECTION_REFUSED, not always with the errno under it,
 * and tls=1 against a server without TLS as SERVER_OPT_NA "tls". TLS is negotiated inside the protocol,
 * and nats.js starts it whenever the server requires it, so a certificate problem can come with or
 * without tls=1. A server that refuses our client certificate (TLS 1.3: after our side of the handshake)
 * only shows as a TIMEOUT, nats.js dropping the socket's error, so after a TLS handshake that one says so.
 */
function hintFor(err: unknown, tls: TlsSettings | undefined): string {
  const code = natsCode(err);
  if (code === 'TIMEOUT' && tls)
    return tls.cert
      ? 'the connection went quiet after the TLS handshake: if the server verifies client certificates, give one signed by a CA it trusts with cert= and key='
      : 'the connection went quiet after the TLS handshake: if the server verifies client certificates, give one with cert= and key=';
  const mapped =
    code === 'CONNECTION_REFUSED'
      ? { code: 'ECONNREFUSED' }
      : code === 'SERVER_OPT_NA' && (err as Error).message === 'tls'
        ? { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }
        : err;
  return connectHint(mapped, {
    ...HINTS,
    tls: { secure: true, otherScheme: 'nats', switchTls: 'leave out tls=1' },
  });
}

function natsCode(err: unknown): string | undefined {
  return (err as Partial<NatsError> | undefined)?.code;
}

function errorCodeOf(err: unknown): TransportErrorCode {
  const code = natsCode(err);
  if (code === 'MAX_PAYLOAD_EXCEEDED') return 'too_large';
  if (code === 'TIMEOUT' || code === '408') return 'timeout';
  if (code === 'CONNECTION_CLOSED' || code === 'CONNECTION_DRAINING') return 'closed';
  if (code === 'DISCONNECT' || code === 'CONNECTION_REFUSED') return 'not_connected';
  // 503: no responders, e.g. JetStream disabled or no stream for the subject.
  if (code === '503' || (err as Partial<NatsError>)?.api_error) return 'rejected';
  return 'error';
}

function describe(err: unknown): string {
  const e = err as (Partial<NatsError> & { cause?: { code?: string } }) | undefined;
  const sys = e?.chainedError && (e.chainedError as { code?: string }).code;
  if (e?.code === 'CONNECTION_REFUSED') return `ECONNREFUSED (${e.message})`;
  if (sys) return `${sys} (${e?.message})`;
  if (e?.api_error) return `${e.api_error.description} (err_code ${e.api_error.err_code})`;
  return e?.message ?? String(err);
}

/** The receipt of every core publish without flush: there is nothing to tell (no ackNs). */
const PUBLISHED: Promise<PublishReceipt> = Promise.resolve(Object.freeze({}));

export class NatsTransport implements Transport {
  readonly kind = 'nats';
  readonly textOnly = false;
  readonly displayUrl: string;
  private readonly cfg: NatsUrl;
  private readonly wallNs: () => bigint;
  private readonly clientName: string | undefined;
  private readonly instanceId = randomBytes(4).toString('hex');
  private readonly reconnect: { initialMs: number; maxMs: number };
  private readonly hub = new StatusHub();
  private readonly closeAc = new AbortController();
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;
  private closing: Promise<void> | undefined;
  private attempt = 0;
  private lastDelayMs = 0;
  private lastError: string | undefined;
  /** subject → the stream that holds it; lookups and changes serialised through `streamChain`. */
  private readonly covered = new Map<string, Promise<string>>();
  private streamChain: Promise<unknown> = Promise.resolve();
  private readonly onClose = new Set<() => void>();
  /** Running JetStream consumer loops, awaited by close() so they can remove their consumers first. */
  private readonly loops = new Set<Promise<void>>();
  private readonly waiters = new StateWaiters();
  private readonly subjects = new Map<string, string>();

  constructor(url: string, opts: TransportOptions = {}) {
    this.displayUrl = redactUrl(url);
    this.cfg = parseNatsUrl(url);
    this.wallNs = opts.wallNs ?? wallClockNs;
    this.clientName = opts.clientName;
    this.reconnect = { initialMs: opts.reconnect?.initialMs ?? 100, maxMs: opts.reconnect?.maxMs ?? 5000 };
  }

  get state(): TransportStatus['type'] {
    return this.hub.state;
  }

  private get closed(): boolean {
    return this.closing !== undefined;
  }

  status(): AsyncIterable<TransportStatus> {
    return this.hub.stream();
  }

  private setStatus(s: TransportStatus): void {
    this.hub.set(s);
    if (s.type === 'connected' || s.type === 'closed') this.waiters.wake();
  }

  private whenConnected(signal: AbortSignal): Promise<void> {
    if (this.state === 'connected' || this.closed || signal.aborted) return Promise.resolve();
    return this.waiters.wait(signal);
  }

  async connect(signal?: AbortSignal): Promise<void> {
    if (this.closed) throw new TransportError('closed', 'transport is closed');
    signal?.throwIfAborted();
    if (this.nc) return;
    this.setStatus({ type: 'connecting' });
    let servers: string[];
    try {
      servers = await this.speakingServers(signal);
    } catch (err) {
      if (err instanceof TransportError) throw err;
      const reason = 'gave up waiting (signal aborted)';
      if (!this.closed) this.setStatus({ type: 'disconnected', error: reason });
      throw new TransportError('timeout', `cannot connect to ${this.displayUrl}: ${reason}`, { cause: err });
    }
    const tls = this.cfg.tls;
    const options: ConnectionOptions = {
      servers,
      name: this.clientName ?? `coalmine-${this.instanceId}`,
      user: this.cfg.user,
      pass: this.cfg.pass,
      token: this.cfg.token,
      ...(this.cfg.creds ? { authenticator: credsAuthenticator(this.cfg.creds) } : {}),
      // nats.js passes these on to tls.connect: Buffers, servername and rejectUnauthorized included.
      ...(tls
        ? {
            tls: {
              ...(tls.ca ? { ca: tls.ca.toString('utf8') } : {}),
              ...(tls.cert ? { cert: tls.cert.toString('utf8') } : {}),
              ...(tls.key ? { key: tls.key.toString('utf8') } : {}),
              ...(tls.servername ? { servername: tls.servername } : {}),
              rejectUnauthorized: tls.rejectUnauthorized,
            } as TlsOptions,
          }
        : {}),
      timeout: CONNECT_TIMEOUT_MS,
      // Only the first connect may fail; after that nats.js retries forever with our backoff.
      waitOnFirstConnect: false,
      maxReconnectAttempts: -1,
      reconnectTimeWait: this.reconnect.initialMs,
      reconnectJitter: this.reconnect.initialMs,
      reconnectDelayHandler: () => {
        this.lastDelayMs = backoffMs(this.attempt, this.reconnect.initialMs, this.reconnect.maxMs);
        return this.lastDelayMs;
      },
      // A silently dead server is noticed within ~10 s rather than the default 4 min.
      pingInterval: 5000,
      maxPingOut: 2,
    };
    let nc: NatsConnection;
    const pending = natsConnect(options);
    try {
      nc = await untilAborted(pending, signal);
    } catch (err) {
      // We started this connection, so we close it: one that completes after we gave up waiting would
      // otherwise stay open, reconnecting forever, with nobody holding it.
      pending.then(
        (late) => void late.close().catch(() => {}),
        () => {},
      );
      const aborted = signal?.aborted ?? false;
      const reason = aborted ? 'gave up waiting (signal aborted)' : describe(err);
      if (!this.closed) this.setStatus({ type: 'disconnected', error: reason });
      throw new TransportError(
        aborted ? 'timeout' : 'not_connected',
        `cannot connect to ${this.displayUrl}: ${reason} — ${hintFor(err, tls)}`,
        {
          cause: err,
        },
      );
    }
    if (this.closed) {
      void nc.close().catch(() => {});
      throw new TransportError('closed', 'transport closed while connecting');
    }
    this.nc = nc;
    if (this.cfg.jetstream) {
      try {
        this.jsm = await nc.jetstreamManager({ timeout: 5000 });
        this.js = nc.jetstream({ timeout: 5000 });
      } catch (err) {
        void nc.close().catch(() => {});
        this.nc = undefined;
        this.setStatus({ type: 'disconnected', error: describe(err) });
        throw new TransportError(
          'not_connected',
          `JetStream is not available at ${this.displayUrl}: ${describe(err)} — start nats-server with -js`,
          {
            cause: err,
          },
        );
      }
    }
    void this.watch(nc);
    this.setStatus({ type: 'connected' });
  }

  /**
   * The servers of the URL that answer with INFO, or all of them when none is silent. A server that
   * accepts TCP and stays silent is left out (nats.js would leave its socket open forever, see
   * info-probe.ts); when every server is silent, connect fails here, saying so.
   */
  private async speakingServers(signal: AbortSignal | undefined): Promise<string[]> {
    const results = await Promise.all(this.cfg.servers.map((s) => probeInfo(s, CONNECT_TIMEOUT_MS, signal)));
    if (signal?.aborted) throw signal.reason;
    const speaking = this.cfg.servers.filter((_s, i) => results[i] !== 'silent');
    if (speaking.length > 0) return speaking;
    const reason = `${this.cfg.servers.join(', ')} accepted the TCP connection but sent no NATS INFO within ${CONNECT_TIMEOUT_MS / 1000} s`;
    this.setStatus({ type: 'disconnected', error: reason });
    throw new TransportError(
      'not_connected',
      `cannot connect to ${this.displayUrl}: ${reason} — is a NATS server listening there, and not another service or a TLS-first proxy?`,
    );
  }

  /** Maps nats.js status events onto ours. */
  private async watch(nc: NatsConnection): Promise<void> {
    void nc.closed().then((err) => {
      // Closed without close(): nats.js gave up (auth error, or the server told it to go away).
      if (!this.closed)
        this.setStatus({
          type: 'disconnected',
          error: err ? describe(err) : 'connection closed by the client library',
        });
    });
    try {
      for await (const s of nc.status()) {
        if (this.closed) return;
        const data = typeof s.data === 'string' ? s.data : JSON.stringify(s.data);
        switch (s.type) {
          case 'disconnect':
            this.lastError = `disconnected from ${data}`;
            this.setStatus({ type: 'disconnected', error: this.lastError });
            break;
          case 'reconnecting':
            this.attempt++;
            this.setStatus({
              type: 'reconnecting',
              attempt: this.attempt,
              delayMs: this.lastDelayMs,
              error: this.lastError,
            });
            break;
          case 'reconnect':
            this.attempt = 0;
            this.lastError = undefined;
            this.setStatus({ type: 'connected' });
            break;
          case 'error':
            this.lastError = data;
            break;
          default:
            break;
        }
      }
    } catch {
      // The status iterator ends with the connection; nothing to report beyond closed().
    }
  }

  publish(channel: string, payload: Uint8Array, opts?: PublishOptions): Promise<PublishReceipt> {
    const nc = this.nc;
    // Core without flush, connected: fire and forget, without an async function's promise and frame per
    // publish (a canary's hot path). Everything else, errors included, takes the full path.
    if (!this.js && !this.cfg.flush && nc && !this.closed && this.state === 'connected') {
      const max = nc.info?.max_payload;
      if (max === undefined || payload.byteLength <= max) {
        try {
          nc.publish(this.subjectOf(channel), payload);
          return PUBLISHED;
        } catch {
          // send() publishes again and reports the error as it always does.
        }
      }
    }
    return this.send(channel, payload, opts?.timeoutMs ?? 5000);
  }

  /** subjectFor, remembered: a canary publishes to the same few channels at up to 100,000/s. */
  private subjectOf(channel: string): string {
    let subject = this.subjects.get(channel);
    if (subject === undefined) {
      if (this.subjects.size >= 1024) this.subjects.clear();
      subject = subjectFor(channel);
      this.subjects.set(channel, subject);
    }
    return subject;
  }

  private async send(channel: string, payload: Uint8Array, timeoutMs: number): Promise<PublishReceipt> {
    if (this.closed) throw new TransportError('closed', 'transport is closed');
    const nc = this.nc;
    if (!nc || this.state !== 'connected') {
      throw new TransportError('not_connected', `not connected to ${this.displayUrl} (${this.state})`);
    }
    const subject = this.subjectOf(channel);
    const max = nc.info?.max_payload;
    if (max !== undefined && payload.byteLength > max) {
      throw new TransportError(
        'too_large',
        `${payload.byteLength} bytes is over the server's max_payload of ${max}`,
      );
    }
    try {
      if (this.js) {
        const js = this.js;
        const acked = (async () => {
          await this.ensureCovered(subject);
          await js.publish(subject, payload, { timeout: timeoutMs });
          return this.wallNs();
        })();
        const ackNs = await withTimeout(
          acked,
          timeoutMs,
          () => new TransportError('timeout', `no PubAck within ${timeoutMs} ms`),
        );
        return { ackNs };
      }
      nc.publish(subject, payload);
      if (!this.cfg.flush) return {};
      await withTimeout(
        nc.flush(),
        timeoutMs,
        () => new TransportError('timeout', `no flush round trip within ${timeoutMs} ms`),
      );
      return { ackNs: this.wallNs() };
    } catch (err) {
      if (err instanceof TransportError) throw err;
      if (this.closed)
        throw new TransportError('closed', 'transport closed while publishing', { cause: err });
      throw new TransportError(errorCodeOf(err), `publish to ${subject} failed: ${describe(err)}`, {
        cause: err,
      });
    }
  }

  /**
   * The stream that holds `subject`: one that already captures it (a subject belongs to at most one
   * stream, so publishes land there whatever we configure), else ours, created or extended to cover it.
   */
  private ensureCovered(subject: string): Promise<string> {
    let p = this.covered.get(subject);
    if (!p) {
      p = this.streamChain.then(() => this.coverSubject(subject));
      this.streamChain = p.catch(() => {});
      this.covered.set(subject, p);
      p.catch(() => this.covered.delete(subject));
    }
    return p;
  }

  private async coverSubject(subject: string): Promise<string> {
    const jsm = this.jsm!;
    const name = this.cfg.stream;
    const wanted = streamSubjectFor(subject);
    const holder = async () => jsm.streams.find(subject).catch(() => undefined);
    for (let tries = 0; ; tries++) {
      const found = await holder();
      if (found) return found;
      try {
        const info = await jsm.streams.info(name).catch((err: Partial<NatsError>) => {
          if (err.api_error?.err_code === 10059) return undefined; // stream not found
          throw err;
        });
        if (!info) {
          await jsm.streams.add({
            name,
            subjects: [wanted],
            max_msgs: this.cfg.maxMsgs,
            storage: StorageType.File,
            retention: RetentionPolicy.Limits,
            discard: DiscardPolicy.Old,
          });
        } else {
          await jsm.streams.update(name, {
            ...info.config,
            subjects: [...(info.config.subjects ?? []), wanted],
          });
        }
        return name;
      } catch (err) {
        // Lost a race with another client creating or extending a stream: look again, a few times.
        if (tries >= 3) {
          throw new TransportError(
            'rejected',
            `cannot make stream ${name} cover ${subject}: ${describe(err)}`,
            { cause: err },
          );
        }
      }
    }
  }

  subscribe(channel: string, signal: AbortSignal): AsyncIterable<Delivery> {
    return subscriptionQueue(this.closed, signal, (q) => {
      const subject = subjectFor(channel);
      const stopAc = new AbortController();
      const stop = () => {
        stopAc.abort();
        q.end();
        this.onClose.delete(stop);
      };
      this.onClose.add(stop);
      if (this.cfg.jetstream) {
        const loop = this.consumeJetStream(subject, q, stopAc.signal, new Date()).catch(() => {});
        this.loops.add(loop);
        void loop.finally(() => this.loops.delete(loop));
      } else {
        void this.subscribeCore(subject, q, stopAc.signal);
      }
      return stop;
    });
  }

  private async subscribeCore(subject: string, q: DeliveryQueue<Delivery>, stop: AbortSignal): Promise<void> {
    await this.whenConnected(stop);
    const nc = this.nc;
    if (stop.aborted || !nc || this.closed) return;
    try {
      // nats.js resends the SUB after every reconnect, so one subscription lives as long as the connection.
      const sub = nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err) return;
          const receivedNs = this.wallNs();
          q.push({ payload: msg.data.slice(), receivedNs });
        },
      });
      stop.addEventListener('abort', () => sub.unsubscribe(), { once: true });
    } catch {
      q.end();
    }
  }

  /**
   * One JetStream pull consumer per subscription, rebuilt with backoff when it fails. Messages are acked
   * once queued; the stream sequence guards against handing out a redelivery twice.
   */
  private async consumeJetStream(
    subject: string,
    q: DeliveryQueue<Delivery>,
    stop: AbortSignal,
    since: Date,
  ): Promise<void> {
    const durable = this.clientName !== undefined;
    const who = (this.clientName ?? `anon_${this.instanceId}_${randomBytes(3).toString('hex')}`).replace(
      /[^A-Za-z0-9_-]/g,
      '_',
    );
    const consumerName = `coalmine_${who}_${subject.replace(/[^A-Za-z0-9_-]/g, '_')}`.slice(0, 200);
    let lastSeq = 0;
    let stream: string | undefined;
    for (let attempt = 0; !stop.aborted && !this.closed;) {
      await this.whenConnected(stop);
      if (stop.aborted || this.closed) break;
      const js = this.js!;
      const jsm = this.jsm!;
      try {
        stream = await this.ensureCovered(subject);
        const existing = await jsm.consumers.info(stream, consumerName).catch(() => undefined);
        if (!existing) {
          const config: Partial<ConsumerConfig> = {
            durable_name: consumerName,
            ack_policy: AckPolicy.Explicit,
            deliver_policy: DeliverPolicy.StartTime,
            opt_start_time: since.toISOString(),
            filter_subject: subject,
            // An anonymous subscriber's consumer cleans itself up; a named one is kept for its restart.
            ...(durable ? {} : { inactive_threshold: nanos(3_600_000) }),
          };
          await jsm.consumers.add(stream, config);
        }
        const consumer = await js.consumers.get(stream, consumerName);
        const messages = await consumer.consume({ max_messages: 256 });
        const onStop = () => void messages.close().catch(() => {});
        stop.addEventListener('abort', onStop, { once: true });
        attempt = 0;
        try {
          for await (const m of messages) {
            const receivedNs = this.wallNs();
            if (m.seq > lastSeq) {
              lastSeq = m.seq;
              q.push({
                payload: m.data.slice(),
                receivedNs,
                brokerNs: brokerNsOf((m as { msg?: { reply?: string } }).msg?.reply, m.info.timestampNanos),
              });
            }
            m.ack();
          }
        } finally {
          stop.removeEventListener('abort', onStop);
        }
      } catch {
        // Consumer gone, stream gone, or the connection dropped mid-setup: rebuild below.
      }
      if (stop.aborted || this.closed) break;
      await sleep(backoffMs(attempt++, 200, 5000), stop);
    }
    if (!durable && stream && this.jsm && this.state === 'connected') {
      await withTimeout(
        this.jsm.consumers.delete(stream, consumerName),
        2000,
        () => new Error('timeout'),
      ).catch(() => {});
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closeAc.abort();
      for (const stop of [...this.onClose]) stop();
      this.onClose.clear();
      await withTimeout(Promise.all([...this.loops]), 3000, () => new Error('timeout')).catch(() => {});
      const nc = this.nc;
      if (nc) await withTimeout(nc.close(), 3000, () => new Error('close timed out')).catch(() => {});
      this.setStatus({ type: 'closed' });
    })();
    return this.closing;
  }
}

/** The stream timestamp from the ack subject's `<tm>` token (exact ns), else the float nanos nats.js parsed. */
function brokerNsOf(reply: string | undefined, fallbackNanos: number): bigint {
  const tokens = reply?.split('.') ?? [];
  // $JS.ACK[.<domain>.<account hash>].<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>[.<token>]
  const tm = tokens.length === 9 ? tokens[7] : tokens.length >= 11 ? tokens[9] : undefined;
  return tm && /^\d+$/.test(tm) ? BigInt(tm) : BigInt(Math.round(fallbackNanos));
}

export function create(url: string, opts?: TransportOptions): Transport {
  return new NatsTransport(url, opts);
}
