import type { AlertNotification, Notifier } from './types.js';

export interface NotifierQueueOptions {
  /** Notifications waiting beyond this are dropped (and counted), so a dead receiver can't grow memory. */
  capacity?: number;
  /** Attempts per notification, the first included. */
  maxAttempts?: number;
  /** Backoff before retry k (1-based) is random() * min(maxDelayMs, baseDelayMs * 2^(k-1)): "full jitter". */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Each attempt is aborted after this long. */
  attemptTimeoutMs?: number;
  random?: () => number;
  /** Injected for tests; must reject or resolve early when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Told about each failed attempt (for logs); never awaited. */
  onError?: (err: unknown, n: AlertNotification, attempt: number) => void;
}

export interface NotifierQueueStats {
  delivered: number;
  /** Attempts that threw or timed out. */
  failedAttempts: number;
  /** Notifications abandoned after maxAttempts. */
  gaveUp: number;
  /** Notifications refused because the queue was full or closed. */
  dropped: number;
  queued: number;
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    // An aborted signal fires no more events: waiting on it would sleep the whole backoff.
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Puts a notifier behind a bounded queue and one background worker, so a slow or dead receiver
 * never holds up rule evaluation: enqueue() returns at once, and delivery failures are counted,
 * never thrown.
 */
export class NotifierQueue {
  readonly #notifier: Notifier;
  readonly #capacity: number;
  readonly #maxAttempts: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #attemptTimeoutMs: number;
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #onError: NotifierQueueOptions['onError'];
  readonly #closed = new AbortController();
  readonly #items: AlertNotification[] = [];
  #worker: Promise<void> | undefined;
  #stats = { delivered: 0, failedAttempts: 0, gaveUp: 0, dropped: 0 };

  constructor(notifier: Notifier, opts: NotifierQueueOptions = {}) {
    this.#notifier = notifier;
    this.#capacity = opts.capacity ?? 100;
    this.#maxAttempts = opts.maxAttempts ?? 5;
    this.#baseDelayMs = opts.baseDelayMs ?? 1000;
    this.#maxDelayMs = opts.maxDelayMs ?? 60_000;
    this.#attemptTimeoutMs = opts.attemptTimeoutMs ?? 10_000;
    this.#random = opts.random ?? Math.random;
    this.#sleep = opts.sleep ?? abortableSleep;
    this.#onError = opts.onError;
  }

  get kind(): string {
    return this.#notifier.kind;
  }

  /** Queues `n` and returns at once: false when it was dropped (queue full or closed). */
  enqueue(n: AlertNotification): boolean {
    if (this.#closed.signal.aborted || this.#items.length >= this.#capacity) {
      this.#stats.dropped++;
      return false;
    }
    this.#items.push(n);
    this.#worker ??= this.#run().finally(() => {
      this.#worker = undefined;
    });
    return true;
  }

  stats(): NotifierQueueStats {
    return { ...this.#stats, queued: this.#items.length };
  }

  /** Resolves once everything queued so far has been delivered or given up on. */
  async idle(): Promise<void> {
    while (this.#worker) await this.#worker;
  }

  /** Stops the worker and aborts the attempt in flight; what is still queued is dropped. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closed.signal.aborted) {
      this.#closed.abort(new Error('notifier queue closed'));
      this.#stats.dropped += this.#items.length;
      this.#items.length = 0;
    }
    await this.idle();
  }

  async #run(): Promise<void> {
    // Yield first so enqueue() never runs any of the notifier's code on the caller's stack.
    await Promise.resolve();
    let n: AlertNotification | undefined;
    while (!this.#closed.signal.aborted && (n = this.#items.shift())) {
      await this.#deliver(n);
    }
  }

  async #deliver(n: AlertNotification): Promise<void> {
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      if (attempt > 1) {
        if (this.#closed.signal.aborted) return;
        const cap = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** (attempt - 2));
        await this.#sleep(this.#random() * cap, this.#closed.signal);
      }
      if (this.#closed.signal.aborted) return;
      if (await this.#attempt(n, attempt)) {
        this.#stats.delivered++;
        return;
      }
    }
    this.#stats.gaveUp++;
  }

  async #attempt(n: AlertNotification, attempt: number): Promise<boolean> {
    const ac = new AbortController();
    const timer = setTimeout(
      () => ac.abort(new Error(`attempt timed out after ${this.#attemptTimeoutMs} ms`)),
      this.#attemptTimeoutMs,
    );
    const onClose = (): void => ac.abort(this.#closed.signal.reason);
    this.#closed.signal.addEventListener('abort', onClose, { once: true });
    try {
      // Race the abort as well, so a notifier that ignores its signal still can't hang the queue.
      await Promise.race([
        this.#notifier.send(n, ac.signal),
        new Promise<never>((_, reject) => {
          ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true });
        }),
      ]);
      return true;
    } catch (err) {
      this.#stats.failedAttempts++;
      try {
        this.#onError?.(err, n, attempt);
      } catch {
        // A broken log hook must not stop delivery.
      }
      return false;
    } finally {
      clearTimeout(timer);
      this.#closed.signal.removeEventListener('abort', onClose);
    }
  }
}
