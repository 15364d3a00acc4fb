/**
 * PostgreSQL LISTEN/NOTIFY transport.
 *
 * URL forms:
 *   postgres://[user[:pass]@]host[:port][/database][?pg options]
 *   postgresql://...
 * The URL goes to node-postgres as its connection string, so its options apply (sslmode=require,
 * application_name=..., options=...); application_name defaults to the transport's clientName.
 *
 * Two sessions per transport, each reconnecting on its own: one publishes with
 * `SELECT pg_notify(channel, payload)`, one LISTENs on every subscribed channel (and LISTENs again
 * after a reconnect).
 *
 * Text only: a NOTIFY payload is text shorter than 8000 bytes, so payloads must be one line of
 * printable ASCII (the envelope's text form) of at most 7999 bytes; anything else is refused with
 * `too_large` before it is sent.
 *
 * Channel names: the logical name is the NOTIFY channel as it is (case and dots kept, quoted for
 * LISTEN); names over 63 bytes become a prefix plus a hash of the whole name, the same in every process.
 *
 * Timestamps:
 *   ackNs     when pg_notify's statement returned: it ran in its own transaction, and the commit is
 *             what queues the notification, so that is the server's acknowledgement.
 *   brokerNs  none: notifications carry no server timestamp.
 *
 * Notifications sent while the listening session is down are not kept for it: they are lost, and the
 * canary counts them.
 */
import { userInfo } from 'node:os';
import pg from 'pg';
import { valueOrThrow } from '../url-options.js';
import { checkUrl } from './url.js';
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
import { notifyChannel, payloadProblem, quoteIdentifier } from './channel.js';
import { LinkStatus, connectAborted } from '../links.js';
import { PublishWindow } from '../publish-window.js';
import { ChannelSubscribers, subscriptionQueue } from '../subscriptions.js';
import { PgLink, describeError } from './link.js';

const DEFAULT_TIMEOUT_MS = 5000;

/** SQLSTATEs of a refused login: bad password, no such role (or not allowed), no such database. */
const LOGIN_REFUSED = new Set(['28P01', '28000', '3D000']);

const HINTS: ConnectHints = {
  server: 'PostgreSQL',
  credentials: 'user, password and database',
  isAuthFailure: (err) => LOGIN_REFUSED.has(String((err as { code?: unknown } | undefined)?.code)),
};

/** libpq's default user when the URL names none: PGUSER, then the operating system user. */
function defaultUser(): string | undefined {
  if (process.env.PGUSER) return process.env.PGUSER;
  try {
    return userInfo().username;
  } catch {
    return undefined; // no passwd entry for this uid: leave it to the server to say
  }
}

/**
 * The connection string node-postgres gets, parsed once:
 * - libpq's default user filled in when the URL names none: node-postgres takes only $USER, and when that
 *   is unset (containers, services) it sends no user at all. The string has to carry it, as node-postgres
 *   lets the string's (missing) user override a `user` option.
 * - `ssl=false` as `ssl=0`: node-postgres's parser turns `1` and `true` into true and `0` into false, but
 *   keeps `false` as the string "false", which turns TLS on.
 * Every other option goes through as given.
 */
export function pgConnectionString(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  let changed = false;
  if (!u.username && u.hostname && !u.searchParams.has('user')) {
    const user = defaultUser();
    if (user) {
      u.username = encodeURIComponent(user);
      changed = true;
    }
  }
  if (u.searchParams.get('ssl')?.toLowerCase() === 'false') {
    u.searchParams.set('ssl', '0');
    changed = true;
  }
  return changed ? u.toString() : url;
}

export class PostgresTransport implements Transport {
  readonly kind = 'postgres';
  readonly textOnly = true;
  readonly displayUrl: string;
  private readonly clientConfig: pg.ClientConfig;
  private readonly hub = new StatusHub();
  private readonly links = new LinkStatus(this.hub);
  private readonly wallNs: () => bigint;
  /** By NOTIFY channel name. */
  private readonly channels = new ChannelSubscribers<DeliveryQueue<Delivery>>();
  /** NOTIFY channels the current listening session has LISTENed on (or is about to). */
  private readonly listening = new Set<string>();
  private publisher: PgLink | undefined;
  private listener: PgLink | undefined;
  private connected = false;
  private closed = false;
  private connecting: Promise<void> | undefined;
  private readonly window: PublishWindow;

  constructor(
    url: string,
    private readonly opts: TransportOptions = {},
  ) {
    this.displayUrl = redactUrl(url);
    this.window = new PublishWindow(this.displayUrl);
    valueOrThrow(url, { value: url, problems: checkUrl(url) });
    this.wallNs = opts.wallNs ?? wallClockNs;
    this.clientConfig = {
      connectionString: pgConnectionString(url),
      application_name: `coalmine${opts.clientName ? ` ${opts.clientName}` : ''}`,
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
    };
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
    const reconnect = this.opts.reconnect ?? {};
    const publisher = new PgLink(this.clientConfig, reconnect, this.links);
    const listener = new PgLink(
      this.clientConfig,
      reconnect,
      // Channels subscribed while the session was being prepared are LISTENed as soon as it is up.
      {
        up: () => {
          this.links.up();
          this.listenAll();
        },
        down: (error) => this.links.down(error),
        reconnecting: (attempt, delayMs, error) => this.links.reconnecting(attempt, delayMs, error),
      },
      (c) => this.relisten(c),
      (c) => c.on('notification', (msg) => this.onNotification(msg)),
    );
    try {
      await Promise.all([publisher.open(signal), listener.open(signal)]);
      signal?.throwIfAborted();
    } catch (err) {
      await Promise.all([publisher.close(), listener.close()]);
      if (!this.closed) this.hub.set({ type: 'disconnected', error: describeError(err) });
      if (signal?.aborted) throw connectAborted(this.displayUrl, signal);
      throw new TransportError(
        'not_connected',
        `cannot connect to ${this.displayUrl}: ${describeError(err)} — ${connectHint(err, HINTS)}`,
        { cause: err },
      );
    }
    if (this.closed) {
      await Promise.all([publisher.close(), listener.close()]);
      throw new TransportError('closed', 'transport was closed while connecting');
    }
    this.publisher = publisher;
    this.listener = listener;
    this.listenAll();
    this.links.add(publisher);
    this.links.add(listener);
    this.connected = true;
    this.links.activate();
  }

  publish(channel: string, payload: Uint8Array, opts?: PublishOptions): Promise<PublishReceipt> {
    return this.publishNow(channel, payload, opts?.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  private async publishNow(channel: string, payload: Uint8Array, timeoutMs: number): Promise<PublishReceipt> {
    if (this.closed) throw new TransportError('closed', 'transport is closed');
    const problem = payloadProblem(payload);
    if (problem) throw new TransportError('too_large', `${this.displayUrl}: ${problem}`);
    const publisher = this.publisher;
    if (!publisher)
      throw new TransportError('not_connected', `not connected to ${this.displayUrl}: call connect() first`);
    const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('latin1');
    const query = () =>
      publisher.run((c) => c.query('SELECT pg_notify($1, $2)', [notifyChannel(channel), text]));
    try {
      await this.window.send(query, timeoutMs);
      return { ackNs: this.wallNs() };
    } catch (err) {
      if (err instanceof TransportError) throw err;
      if (this.closed) throw new TransportError('closed', 'transport is closed', { cause: err });
      // The server answered with an error (it has a SQLSTATE): it refused the notification.
      if (err instanceof pg.DatabaseError) {
        throw new TransportError(
          'rejected',
          `${this.displayUrl} refused the notification: ${describeError(err)}`,
          {
            cause: err,
          },
        );
      }
      throw new TransportError('not_connected', `${this.displayUrl}: ${describeError(err)}`, { cause: err });
    }
  }

  subscribe(channel: string, signal: AbortSignal): AsyncIterable<Delivery> {
    return subscriptionQueue(this.closed, signal, (q) => {
      const name = notifyChannel(channel);
      this.channels.add(name, q);
      this.listenAll();
      return () => this.unsubscribe(name, q);
    });
  }

  private unsubscribe(name: string, q: DeliveryQueue<Delivery>): void {
    q.end();
    if (!this.channels.remove(name, q)) return;
    if (this.listening.delete(name)) {
      this.listener?.run((c) => c.query(`UNLISTEN ${quoteIdentifier(name)}`)).catch(() => undefined);
    }
  }

  /** Runs on every (re)connection of the listening session, before it counts as up. */
  private async relisten(client: pg.Client): Promise<void> {
    this.listening.clear();
    const names = this.channels.channels();
    if (names.length > 0) await client.query(names.map((n) => `LISTEN ${quoteIdentifier(n)};`).join(' '));
    for (const n of names) this.listening.add(n);
  }

  /** LISTENs on every subscribed channel the current session does not listen on yet. */
  private listenAll(): void {
    const listener = this.listener;
    if (!listener?.up) return;
    for (const name of this.channels.channels()) {
      if (this.listening.has(name)) continue;
      this.listening.add(name);
      // If the session drops first, the reconnect LISTENs on every channel anyway.
      listener.run((c) => c.query(`LISTEN ${quoteIdentifier(name)}`)).catch(() => undefined);
    }
  }

  private onNotification(msg: pg.Notification): void {
    const receivedNs = this.wallNs();
    const subs = this.channels.get(msg.channel);
    if (!subs) return;
    const payload = Buffer.from(msg.payload ?? '', 'latin1');
    for (const q of subs) q.push({ payload, receivedNs });
  }

  status() {
    return this.hub.stream();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.links.deactivate();
    for (const q of this.channels.clear()) q.end();
    await Promise.all([this.publisher?.close(), this.listener?.close()]);
    this.hub.set({ type: 'closed' });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export function create(url: string, opts?: TransportOptions): Transport {
  return new PostgresTransport(url, opts);
}
