import { redactQueryParams } from '../core/log.js';
import type { TransportStatus } from './transport.js';

/**
 * Wall-clock nanoseconds with sub-microsecond resolution and no drift between calls: the monotonic clock
 * anchored once to the wall clock. Date.now() only has whole milliseconds, so the anchor is taken at the
 * instant it ticks over (a spin of at most 1 ms, once): otherwise every timestamp could be up to 1 ms
 * early, and one-way latency between two hosts off by as much.
 */
export function wallClockNs(): bigint {
  anchor ??= calibrate();
  return anchor.wallNs + (process.hrtime.bigint() - anchor.hrNs);
}
let anchor: { wallNs: bigint; hrNs: bigint } | undefined;

function calibrate(): { wallNs: bigint; hrNs: bigint } {
  // The tick lies between the last read before it and the first read after it. A preemption between
  // the two would widen that window, so watch a few ticks and keep the narrowest.
  let best: { wallNs: bigint; hrNs: bigint; width: bigint } | undefined;
  for (let edge = 0; edge < 3; edge++) {
    let before = process.hrtime.bigint();
    const start = Date.now();
    let now = start;
    let after = before;
    while (now === start) {
      before = after;
      after = process.hrtime.bigint();
      now = Date.now();
    }
    after = process.hrtime.bigint();
    const width = after - before;
    if (!best || width < best.width)
      best = { wallNs: BigInt(now) * 1_000_000n, hrNs: before + width / 2n, width };
  }
  return { wallNs: best!.wallNs, hrNs: best!.hrNs };
}

/** Exponential backoff with full jitter in [0.5, 1] of the step: reconnecting clients do not stampede. */
export function backoffMs(attempt: number, initialMs = 100, maxMs = 5000, random = Math.random): number {
  const step = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20));
  return Math.round(step * (0.5 + random() * 0.5));
}

/**
 * Fan-out of status changes to any number of async-iterator readers. Each reader has a bounded queue;
 * a reader that falls behind loses its oldest entries, never blocks the transport.
 */
export class StatusHub {
  private current: TransportStatus = { type: 'disconnected' };
  private readonly readers = new Set<{ queue: TransportStatus[]; wake?: () => void }>();
  private ended = false;

  get state(): TransportStatus['type'] {
    return this.current.type;
  }

  set(status: TransportStatus): void {
    if (this.ended) return;
    this.current = status;
    for (const r of this.readers) {
      r.queue.push(status);
      if (r.queue.length > 100) r.queue.shift();
      r.wake?.();
    }
    if (status.type === 'closed') {
      this.ended = true;
      for (const r of this.readers) r.wake?.();
    }
  }

  async *stream(): AsyncGenerator<TransportStatus> {
    const reader: { queue: TransportStatus[]; wake?: () => void } = { queue: [this.current] };
    this.readers.add(reader);
    try {
      for (;;) {
        const next = reader.queue.shift();
        if (next) {
          yield next;
          if (next.type === 'closed') return;
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((r) => (reader.wake = r));
        reader.wake = undefined;
      }
    } finally {
      this.readers.delete(reader);
    }
  }
}

/**
 * A bounded single-consumer queue turned into an async iterable: what a subscription hands out.
 * Pushing past the bound drops the oldest message and counts it; ending stops the iteration. A ring
 * (grown by doubling up to the bound), so a flood costs constant time per message, never a shift of a
 * long array.
 */
export class DeliveryQueue<T> implements AsyncIterable<T> {
  private ring: (T | undefined)[] = new Array<T | undefined>(16);
  private head = 0;
  private size = 0;
  private wake: (() => void) | undefined;
  private done = false;
  dropped = 0;
  /** Told of each message dropped for the bound, so the reader can count it as its own drop. */
  onDrop: ((item: T) => void) | undefined;

  constructor(private readonly bound = 100_000) {}

  get length(): number {
    return this.size;
  }

  push(item: T): void {
    if (this.done) return;
    if (this.size >= this.bound) {
      const oldest = this.take();
      this.dropped++;
      this.onDrop?.(oldest);
    } else if (this.size === this.ring.length) {
      this.grow();
    }
    this.ring[(this.head + this.size) % this.ring.length] = item;
    this.size++;
    this.wake?.();
  }

  end(): void {
    this.done = true;
    this.wake?.();
  }

  private take(): T {
    const item = this.ring[this.head]!;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.ring.length;
    this.size--;
    return item;
  }

  private grow(): void {
    const next = new Array<T | undefined>(Math.min(this.ring.length * 2, Math.max(this.bound, 16)));
    for (let i = 0; i < this.size; i++) next[i] = this.ring[(this.head + i) % this.ring.length];
    this.ring = next;
    this.head = 0;
  }

  /**
   * Hands each message to `handle` in order as it arrives, until end(): what the async iterator does, but
   * with one promise per batch of messages that arrived together instead of two per message, which is a
   * large share of a coalminer's cost at 100,000 pings a second. `handle` throwing ends it (rejects).
   */
  async drain(handle: (item: T) => void): Promise<void> {
    for (;;) {
      while (this.size > 0) handle(this.take());
      if (this.done) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.size > 0) {
        yield this.take();
        continue;
      }
      if (this.done) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }
}

/** An error's message, or what was thrown as text when it is not an Error. */
export function errorMessage(err: unknown): string {
  // Trimmed: OpenSSL's texts (through amqplib) end in a line break, which split "... — hint" in two.
  return (err instanceof Error ? err.message : String(err)).trim();
}

/** Removes the password from a URL for display. */
export function redactUrl(url: string): string {
  // NATS reads a lone NAME@ as a token, not a user name: that is masked too.
  const token = /^nats(\+jetstream)?:\/\/[^:@/?#]+@/i.test(url);
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    if (token) u.username = '***';
    // A secret in the query too (postgres://host/db?password=..., ?token=...), as the logs mask it.
    return redactQueryParams(u.toString());
  } catch {
    return redactQueryParams(
      url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@').replace(/^(nats[^:]*:\/\/)[^:@/?#]+@/i, '$1***@'),
    );
  }
}
