import type { FlowRecord, ProbeRecord, ResultStore, ScheduleRecord } from './types.js';

export interface WriterOptions {
  /** Flush at least this often (ms). Default 1000. */
  flushIntervalMs?: number;
  /** Flush as soon as this many records wait, and write at most this many per store call. Default 5000. */
  batchSize?: number;
  /** Most records held (queued + being written); beyond it pushes are dropped and counted. Default 100,000. */
  maxQueue?: number;
  /** First retry delay after a failed write (ms), doubled up to maxBackoffMs. Default 100. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Called after each successful flush (for logs and tests). */
  onFlush?: (written: number) => void;
  /** Called when a write fails (once per failure, not per retry of the same cause). */
  onError?: (err: unknown) => void;
}

export interface WriterStats {
  queued: number;
  written: number;
  dropped: number;
  flushes: number;
  /** Store writes that failed (each retry of a batch counts). */
  writeErrors: number;
  /** The error of the write that failed last, while no write has succeeded since. */
  lastError?: string;
  /** When a write last failed (Unix ms), recovered or not. */
  lastErrorAt?: number;
}

type Item =
  | { p: ProbeRecord; f?: undefined; c?: undefined }
  | { f: FlowRecord; p?: undefined; c?: undefined }
  | { c: ScheduleRecord; p?: undefined; f?: undefined };

/**
 * The one path from probes and pings to the store. push* only appends to a bounded queue and returns:
 * a slow, locked or absent store can never stall a probe (seed 002, 6.1: a producer faster than its log
 * consumer took the whole system down). Flushes by time and by size, one at a time; a failed batch is
 * retried with backoff while new results queue up to the bound, and the excess is counted as dropped.
 */
export class BatchedWriter {
  private readonly flushMs: number;
  private readonly batchSize: number;
  private readonly maxQueue: number;
  private readonly minBackoff: number;
  private readonly maxBackoff: number;
  private queue: Item[] = [];
  /** The batch being written (or waiting to be retried); counts against the bound. */
  private pending: Item[] = [];
  /** Records of the current batch already written (a batch of both kinds is written in two calls). */
  private pendingWritten = 0;
  private written = 0;
  private dropped = 0;
  private flushes = 0;
  private writeErrors = 0;
  private lastError: string | undefined;
  private lastErrorAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Immediate | undefined;
  private flushing: Promise<void> | undefined;
  private backoff = 0;
  private retryAt = 0;
  private closed = false;

  constructor(
    private readonly store: Pick<ResultStore, 'writeProbes' | 'writeFlows' | 'writeSchedules'>,
    private readonly opts: WriterOptions = {},
  ) {
    this.flushMs = opts.flushIntervalMs ?? 1000;
    this.batchSize = opts.batchSize ?? 5000;
    this.maxQueue = opts.maxQueue ?? 100_000;
    this.minBackoff = opts.minBackoffMs ?? 100;
    this.maxBackoff = opts.maxBackoffMs ?? 10_000;
    if (!(this.batchSize >= 1 && this.maxQueue >= this.batchSize && this.flushMs > 0))
      throw new RangeError(
        'BatchedWriter: need batchSize >= 1, maxQueue >= batchSize and flushIntervalMs > 0',
      );
    this.timer = setInterval(() => this.kick(), this.flushMs);
    this.timer.unref();
  }

  /** Queues a probe result; false (and counted as dropped) when the queue is full or the writer closed. */
  pushProbe(r: ProbeRecord): boolean {
    return this.push({ p: r });
  }

  pushFlow(r: FlowRecord): boolean {
    return this.push({ f: r });
  }

  /** Queues a canary's schedule sample. */
  pushSchedule(r: ScheduleRecord): boolean {
    return this.push({ c: r });
  }

  private push(item: Item): boolean {
    if (this.closed || this.queue.length + this.pending.length >= this.maxQueue) {
      this.dropped++;
      return false;
    }
    this.queue.push(item);
    if (this.queue.length >= this.batchSize && !this.soon && !this.flushing) {
      this.soon = setImmediate(() => {
        this.soon = undefined;
        this.kick();
      });
    }
    return true;
  }

  stats(): WriterStats {
    const s: WriterStats = {
      queued: this.queue.length + this.pending.length,
      written: this.written,
      dropped: this.dropped,
      flushes: this.flushes,
      writeErrors: this.writeErrors,
    };
    if (this.lastError !== undefined) s.lastError = this.lastError;
    if (this.lastErrorAt !== undefined) s.lastErrorAt = this.lastErrorAt;
    return s;
  }

  /** Starts a flush unless one runs or a retry is not due yet. Never throws. */
  private kick(): void {
    if (this.closed || this.flushing || (this.queue.length === 0 && this.pending.length === 0)) return;
    if (Date.now() < this.retryAt - 2) return;
    this.flushing = this.flushAll().finally(() => {
      this.flushing = undefined;
      // More than a batch arrived meanwhile: go on without waiting for the timer.
      if (this.queue.length >= this.batchSize && Date.now() >= this.retryAt && !this.closed) this.kick();
    });
  }

  private async flushAll(): Promise<void> {
    for (;;) {
      if (this.pending.length === 0) {
        if (this.queue.length === 0) return;
        this.pending = this.queue.length <= this.batchSize ? this.queue : this.queue.slice(0, this.batchSize);
        this.queue = this.pending === this.queue ? [] : this.queue.slice(this.batchSize);
      }
      try {
        await this.writeBatch(this.pending);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        this.writeErrors++;
        this.lastErrorAt = Date.now();
        if (message !== this.lastError) this.opts.onError?.(err);
        this.lastError = message;
        this.backoff = this.backoff === 0 ? this.minBackoff : Math.min(this.maxBackoff, this.backoff * 2);
        this.retryAt = Date.now() + this.backoff;
        // The timer would only look again after flushIntervalMs; retry when the backoff is up.
        setTimeout(() => this.kick(), this.backoff).unref();
        return;
      }
      const n = this.pendingWritten;
      this.pending = [];
      this.pendingWritten = 0;
      this.flushes++;
      // Written again: the status no longer shows an error that is over (its time stays in lastErrorAt).
      this.lastError = undefined;
      this.backoff = 0;
      this.retryAt = 0;
      this.opts.onFlush?.(n);
      // Only whole batches go on at once; a partial one waits for the timer, which is what batches them.
      if (this.queue.length < this.batchSize) return;
      // A synchronous engine (SQLite) would write batch after batch in one turn of the event loop: let
      // timers and sockets in between.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private async writeBatch(items: readonly Item[]): Promise<void> {
    const probes: ProbeRecord[] = [];
    const flows: FlowRecord[] = [];
    const schedules: ScheduleRecord[] = [];
    for (const it of items) {
      if (it.p) probes.push(it.p);
      else if (it.f) flows.push(it.f);
      else schedules.push(it.c);
    }
    // Kinds are written one call each; once one is written it leaves the pending batch, so a failure of
    // a later kind retries only that kind and what follows (no kind is written twice by a retry).
    const kinds = [
      { n: probes.length, write: () => this.store.writeProbes(probes), done: (x: Item) => x.p !== undefined },
      { n: flows.length, write: () => this.store.writeFlows(flows), done: (x: Item) => x.f !== undefined },
      {
        n: schedules.length,
        write: () => this.store.writeSchedules(schedules),
        done: (x: Item) => x.c !== undefined,
      },
    ];
    for (const k of kinds) {
      if (k.n === 0) continue;
      await k.write();
      this.written += k.n;
      this.pendingWritten += k.n;
      this.pending = this.pending.filter((x) => !k.done(x));
    }
  }

  /**
   * Stops accepting, then flushes what it can until the deadline (ms from now, default 5000). Resolves
   * with the stats; what could not be written by then is counted as dropped. Idempotent.
   */
  async close(deadlineMs = 5000): Promise<WriterStats> {
    if (!this.closed) {
      this.closed = true;
      if (this.timer) clearInterval(this.timer);
      if (this.soon) clearImmediate(this.soon);
      this.timer = undefined;
      this.soon = undefined;
      const end = Date.now() + deadlineMs;
      let deadlineTimer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'deadline'>(
        (r) => (deadlineTimer = setTimeout(() => r('deadline'), deadlineMs)),
      );
      try {
        while (Date.now() < end && (this.queue.length > 0 || this.pending.length > 0 || this.flushing)) {
          if (!this.flushing) {
            // A retry that is not due yet: wait for it, but not past the deadline.
            const wait = Math.min(this.retryAt, end) - Date.now();
            if (wait > 0 && (await Promise.race([sleep(wait), deadline])) === 'deadline') break;
            this.flushing = this.flushAll().finally(() => (this.flushing = undefined));
          }
          if ((await Promise.race([this.flushing, deadline])) === 'deadline') break;
        }
      } finally {
        clearTimeout(deadlineTimer);
      }
      const left = this.queue.length + this.pending.length;
      this.dropped += left;
      this.queue = [];
      this.pending = [];
    }
    return this.stats();
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
