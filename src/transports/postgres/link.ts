import pg from 'pg';
import { backoffMs } from '../base.js';
import { InFlightCommands, LinkDownError, type LinkListener } from '../links.js';

export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describeError(err.errors[0]);
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    // Socket errors carry their errno name (ECONNREFUSED) in `code`; SQLSTATE codes are digits and noise here.
    return code && /^E[A-Z]+$/.test(code) && !err.message.includes(code)
      ? `${code} ${err.message}`
      : err.message;
  }
  return String(err);
}

/**
 * One PostgreSQL session that comes back after it drops. A pg.Client cannot reconnect, so every
 * (re)connection is a new client; `prepare` runs on each before it counts as up (LISTEN again).
 */
export class PgLink {
  private client: pg.Client | undefined;
  private readonly ended = new WeakSet<pg.Client>();
  private closing = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastError: string | undefined;
  private readonly inFlight = new InFlightCommands();
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly reconnect: { initialMs?: number; maxMs?: number },
    private readonly listener: LinkListener,
    private readonly prepare: (client: pg.Client) => Promise<void> = async () => {},
    /** Attaches listeners (notifications) to each new client. */
    private readonly onClient: (client: pg.Client) => void = () => {},
  ) {}

  get up(): boolean {
    return this.client !== undefined;
  }

  get error(): string | undefined {
    return this.lastError;
  }

  /** First connection; rejects with the reason when it fails. */
  async open(signal?: AbortSignal): Promise<void> {
    this.adopt(await this.connectOnce(signal));
  }

  /** Runs a query on the current session, rejecting with LinkDownError if there is none or it drops. */
  run<T>(query: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = this.client;
    if (this.closing) return Promise.reject(new LinkDownError('closed'));
    if (!client)
      return Promise.reject(new LinkDownError(`not connected (${this.lastError ?? 'reconnecting'})`));
    // One query at a time per session: pg 8 deprecates issuing a query while another runs (pg 9 drops it).
    const turn = this.tail.then(() => {
      if (this.client !== client) throw new LinkDownError(`connection lost (${this.lastError ?? 'closed'})`);
      return query(client);
    });
    this.tail = turn.then(
      () => undefined,
      () => undefined,
    );
    return this.inFlight.track(() => turn);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    this.inFlight.failAll('closed');
    await client?.end().catch(() => undefined);
  }

  private async connectOnce(signal?: AbortSignal): Promise<pg.Client> {
    const client = new pg.Client(this.config);
    client.on('error', (err: Error) => {
      this.lastError = describeError(err);
    });
    client.once('end', () => this.onEnd(client));
    this.onClient(client);
    const abort = () => void client.end().catch(() => undefined);
    signal?.addEventListener('abort', abort, { once: true });
    try {
      await client.connect();
      await this.prepare(client);
      signal?.throwIfAborted();
      if (this.closing) throw new LinkDownError('closed');
      if (this.ended.has(client))
        throw new LinkDownError(this.lastError ?? 'connection ended while preparing');
      return client;
    } catch (err) {
      if (!(err instanceof LinkDownError)) this.lastError = describeError(err);
      client.end().catch(() => undefined);
      throw err;
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  }

  private adopt(client: pg.Client): void {
    this.client = client;
    this.tail = Promise.resolve();
    this.attempt = 0;
    this.lastError = undefined;
    this.listener.up();
  }

  private onEnd(client: pg.Client): void {
    this.ended.add(client);
    if (this.client !== client) return;
    this.client = undefined;
    const reason = this.lastError ?? 'connection closed by the server';
    this.inFlight.failAll(`connection lost (${reason})`);
    if (this.closing) return;
    this.listener.down(reason);
    this.schedule();
  }

  private schedule(): void {
    const attempt = ++this.attempt;
    const delayMs = backoffMs(attempt - 1, this.reconnect.initialMs, this.reconnect.maxMs);
    this.listener.reconnecting(attempt, delayMs, this.lastError);
    this.timer = setTimeout(() => {
      this.connectOnce().then(
        (client) => {
          if (this.closing) client.end().catch(() => undefined);
          else this.adopt(client);
        },
        () => {
          if (!this.closing) this.schedule();
        },
      );
    }, delayMs);
  }
}
