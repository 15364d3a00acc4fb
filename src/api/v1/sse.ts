import type { ServerResponse } from 'node:http';
import type { ApiEvent, ApiEvents } from './context.js';
import { streamHeaders } from './http.js';

export interface EventHubOptions {
  /** Most streams at once; more are refused with 503. */
  maxClients: number;
  /**
   * Most bytes waiting to be sent to one client. A client that reads slower than events arrive fills
   * it and is disconnected (it reconnects and starts fresh); nothing queues without bound.
   */
  maxQueueBytes: number;
  keepaliveMs: number;
}

export interface EventHubStats {
  clients: number;
  /** Clients disconnected because they fell too far behind. */
  dropped: number;
  /** Streams refused because maxClients were open. */
  refused: number;
  /** The most bytes ever queued for one client: at most maxQueueBytes. */
  maxQueuedBytes: number;
}

/** Fans the agent's events out to server-sent-event streams, each with a bounded send queue. */
export class EventHub {
  private readonly clients = new Set<ServerResponse>();
  private unsubscribe: (() => void) | undefined;
  private keepalive: NodeJS.Timeout | undefined;
  private readonly counters = { dropped: 0, refused: 0, maxQueuedBytes: 0 };

  constructor(
    private readonly events: ApiEvents,
    private readonly opts: EventHubOptions,
  ) {}

  stats(): EventHubStats {
    return { clients: this.clients.size, ...this.counters };
  }

  /** Whether another stream may open now; when not, the refusal is counted. */
  admit(): boolean {
    if (this.clients.size < this.opts.maxClients) return true;
    this.counters.refused++;
    return false;
  }

  /** Starts a stream on res (after admit()), beginning with `hello`. */
  open(res: ServerResponse, hello: unknown): void {
    res.writeHead(
      200,
      streamHeaders('text/event-stream; charset=utf-8', {
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      }),
    );
    this.clients.add(res);
    res.on('close', () => this.remove(res));
    this.send(res, `retry: 5000\n${frame('hello', hello)}`);
    if (this.clients.size === 1) this.start();
  }

  /** Ends every stream. Idempotent. */
  close(): void {
    for (const res of [...this.clients]) {
      this.remove(res);
      res.end();
    }
  }

  private start(): void {
    this.unsubscribe ??= this.events.subscribe((e) => this.broadcast(e));
    this.keepalive ??= setInterval(() => {
      for (const res of [...this.clients]) this.send(res, ': keepalive\n\n');
    }, this.opts.keepaliveMs);
    this.keepalive.unref();
  }

  private stopIfIdle(): void {
    if (this.clients.size > 0) return;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearInterval(this.keepalive);
    this.keepalive = undefined;
  }

  private broadcast(e: ApiEvent): void {
    let text: string;
    try {
      text = frame(e.event, e.data);
    } catch {
      return; // Not serialisable (a cycle, a BigInt): the agent's bug, not the clients' problem.
    }
    for (const res of [...this.clients]) this.send(res, text);
  }

  private send(res: ServerResponse, text: string): void {
    if (res.destroyed) return this.remove(res);
    // writableLength counts what the response and its socket still hold: the per-client queue.
    const queued = res.writableLength + Buffer.byteLength(text);
    if (queued > this.opts.maxQueueBytes) {
      this.counters.dropped++;
      this.remove(res);
      res.destroy();
      return;
    }
    res.write(text);
    if (res.writableLength > this.counters.maxQueuedBytes) this.counters.maxQueuedBytes = res.writableLength;
  }

  private remove(res: ServerResponse): void {
    if (this.clients.delete(res)) this.stopIfIdle();
  }
}

function frame(event: string, data: unknown): string {
  // JSON.stringify never emits a raw newline, so the data is one `data:` line.
  return `event: ${event}\ndata: ${JSON.stringify(data ?? null)}\n\n`;
}
