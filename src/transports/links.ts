import type { StatusHub } from './base.js';
import { TransportError } from './transport.js';

/** What one of a transport's connections reports to the transport's status. */
export interface LinkListener {
  up(): void;
  down(error: string | undefined): void;
  reconnecting(attempt: number, delayMs: number, error: string | undefined): void;
}

/** A command failed because the connection was not up, or went down before the reply came. */
export class LinkDownError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LinkDownError';
  }
}

/**
 * The commands in flight on one connection. When it drops they all reject at once with LinkDownError,
 * instead of hanging until the client library notices (or never).
 */
export class InFlightCommands {
  private readonly dropWaiters = new Set<(err: Error) => void>();

  /** Settles as `command()` does, or rejects as soon as failAll() is called. */
  track<T>(command: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onDrop = (err: Error) => reject(err);
      this.dropWaiters.add(onDrop);
      command().then(
        (v) => {
          this.dropWaiters.delete(onDrop);
          resolve(v);
        },
        (err: unknown) => {
          this.dropWaiters.delete(onDrop);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  failAll(reason: string): void {
    const err = new LinkDownError(reason);
    for (const f of [...this.dropWaiters]) f(err);
    this.dropWaiters.clear();
  }
}

/**
 * Folds the states of a transport's connections into one status: connected when every link is up,
 * disconnected as soon as one drops, and every reconnect attempt passed through.
 */
export class LinkStatus implements LinkListener {
  private readonly links = new Set<{ readonly up: boolean }>();
  private active = false;

  constructor(private readonly hub: StatusHub) {}

  add(link: { readonly up: boolean }): void {
    this.links.add(link);
  }

  remove(link: { readonly up: boolean }): void {
    this.links.delete(link);
    this.up();
  }

  /** Called once the first connection is complete; status changes are reported from then on. */
  activate(): void {
    this.active = true;
    this.hub.set({ type: 'connected' });
  }

  deactivate(): void {
    this.active = false;
  }

  up(): void {
    if (!this.active || this.hub.state === 'connected') return;
    for (const l of this.links) if (!l.up) return;
    this.hub.set({ type: 'connected' });
  }

  down(error: string | undefined): void {
    if (!this.active) return;
    if (this.hub.state === 'connected') this.hub.set({ type: 'disconnected', error });
  }

  reconnecting(attempt: number, delayMs: number, error: string | undefined): void {
    if (!this.active) return;
    this.hub.set({ type: 'reconnecting', attempt, delayMs, error });
  }
}

/** The error for a first connect() given up because its signal aborted: `timeout` when the signal was a timeout. */
export function connectAborted(displayUrl: string, signal: AbortSignal): TransportError {
  const timedOut = (signal.reason as Error | undefined)?.name === 'TimeoutError';
  return new TransportError(timedOut ? 'timeout' : 'error', `connecting to ${displayUrl} was aborted`, {
    cause: signal.reason,
  });
}
