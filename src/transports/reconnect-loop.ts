import { backoffMs, errorMessage, type StatusHub } from './base.js';
import { connectHint, type ConnectHints } from './connect-hint.js';
import { TransportError } from './transport.js';

export interface ReconnectLoopOptions {
  hub: StatusHub;
  displayUrl: string;
  /** What to check when the first connection fails, chosen by why it did (connect-hint.ts). */
  hints: ConnectHints;
  initialMs: number;
  maxMs: number;
  /** One connection attempt; calls connected() once the connection is usable, rejects leaving nothing open. */
  open(signal?: AbortSignal): Promise<void>;
  isClosed(): boolean;
  /** Whether a usable connection is up now. */
  isLive(): boolean;
}

/**
 * The connect and reconnect cycle of a transport that runs on one connection at a time: connect() makes
 * the first attempt (or waits for the loop when it is already retrying), a lost connection is retried with
 * backoff until close, and every step is reported on the transport's StatusHub.
 */
export class ReconnectLoop {
  private attempt = 0;
  private connecting: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** connect() calls made while the loop runs: settled at its next success, or at close. */
  private readonly waiters: ReconnectWaiters;

  constructor(private readonly o: ReconnectLoopOptions) {
    this.waiters = new ReconnectWaiters(o.displayUrl);
  }

  async connect(signal?: AbortSignal): Promise<void> {
    const o = this.o;
    if (o.isClosed()) throw new TransportError('closed', 'transport is closed');
    if (o.isLive()) return;
    if (this.attempt > 0) return this.waiters.wait(signal); // the reconnect loop is on it
    if (!this.connecting) {
      o.hub.set({ type: 'connecting' });
      this.connecting = o
        .open(signal)
        .catch((err: unknown) => {
          if (o.isClosed())
            throw new TransportError('closed', 'transport closed while connecting', { cause: err });
          o.hub.set({ type: 'disconnected', error: errorMessage(err) });
          if (err instanceof TransportError) throw err;
          throw new TransportError(
            'not_connected',
            `cannot connect to ${o.displayUrl}: ${errorMessage(err)} — ${connectHint(err, o.hints)}`,
            { cause: err },
          );
        })
        .finally(() => (this.connecting = undefined));
    }
    return this.connecting;
  }

  /** A connection is up and usable: reports it, and wakes the connect() calls waiting for it. */
  connected(): void {
    this.attempt = 0;
    this.o.hub.set({ type: 'connected' });
    this.waiters.settle();
  }

  /** The live connection was lost: reports it and starts retrying. */
  lost(error: string): void {
    this.o.hub.set({ type: 'disconnected', error });
    this.retry(error);
  }

  private retry(error: string): void {
    if (this.o.isClosed()) return;
    this.attempt++;
    const delayMs = backoffMs(this.attempt - 1, this.o.initialMs, this.o.maxMs);
    this.o.hub.set({ type: 'reconnecting', attempt: this.attempt, delayMs, error });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.o.open().catch((err: unknown) => this.retry(errorMessage(err)));
    }, delayMs);
  }

  /** Stops retrying: the first step of close(). */
  stop(): void {
    clearTimeout(this.timer);
  }

  /** Waits out a first attempt still running, then fails the connect() calls still waiting: the last step of close(). */
  async end(): Promise<void> {
    await this.connecting?.catch(() => {});
    this.waiters.settle(new TransportError('closed', 'transport closed while reconnecting'));
  }
}

/**
 * connect() calls made while the reconnect loop is running: they wait for the loop's next connection
 * instead of starting one of their own. Each gives up with `timeout` when its signal aborts.
 */
class ReconnectWaiters {
  private readonly waiters = new Set<(err?: TransportError) => void>();

  constructor(private readonly displayUrl: string) {}

  wait(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (err?: TransportError) => {
        this.waiters.delete(done);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = () =>
        done(
          new TransportError('timeout', `still reconnecting to ${this.displayUrl}`, {
            cause: signal?.reason,
          }),
        );
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(done);
    });
  }

  /** Resolves every waiter (connected), or rejects them all with `err`. */
  settle(err?: TransportError): void {
    for (const w of this.waiters) w(err);
  }
}
