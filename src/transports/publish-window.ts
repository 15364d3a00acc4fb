import { TransportError } from './transport.js';

interface Waiting {
  deadline: number;
  timeoutMs: number;
  reject: (err: Error) => void;
  done: boolean;
}

/** How often expired publishes are looked for: a publish times out within this much of its deadline. */
const SWEEP_MS = 25;

/**
 * Publishes waiting for the server's reply, bounded: past `max` at once the server is not keeping up,
 * and a publish fails with `timeout` at once rather than queueing behind the others. Each waits at most
 * its own timeout; one given up on still counts until the server answers it, since the server has it.
 * One sweep timer serves every waiting publish: a timer per publish costs more than the publish itself
 * at tens of thousands a second.
 */
export class PublishWindow {
  private inFlight = 0;
  private readonly waiting = new Set<Waiting>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly displayUrl: string,
    private readonly max = 10_000,
  ) {}

  /** Whether `count` more publishes would not fit now (send() would reject them at once). */
  full(count = 1): boolean {
    return this.inFlight + count > this.max;
  }

  /** What a publish that does not fit gets. */
  fullError(): TransportError {
    return new TransportError(
      'timeout',
      `${this.displayUrl}: ${this.inFlight} publishes still wait for the server`,
    );
  }

  /**
   * Runs `send`, rejecting with TransportError('timeout') when the window is full or after `timeoutMs`.
   * `count`: how many publishes it carries (a batch counts as its messages).
   */
  send<T>(send: () => Promise<T>, timeoutMs: number, count = 1): Promise<T> {
    if (this.inFlight + count > this.max) return Promise.reject(this.fullError());
    this.inFlight += count;
    return new Promise<T>((resolve, reject) => {
      const w: Waiting = { deadline: Date.now() + timeoutMs, timeoutMs, reject, done: false };
      this.waiting.add(w);
      this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
      send().then(
        (v) => {
          this.inFlight -= count;
          if (w.done) return;
          w.done = true;
          this.waiting.delete(w);
          resolve(v);
        },
        (err: unknown) => {
          this.inFlight -= count;
          if (w.done) return;
          w.done = true;
          this.waiting.delete(w);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  private sweep(): void {
    const now = Date.now();
    for (const w of this.waiting) {
      if (w.deadline > now) continue;
      w.done = true;
      this.waiting.delete(w);
      w.reject(new TransportError('timeout', `no reply from ${this.displayUrl} within ${w.timeoutMs} ms`));
    }
    if (this.waiting.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}
