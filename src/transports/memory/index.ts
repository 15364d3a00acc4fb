import { valueOrThrow } from '../url-options.js';
import { checkUrl } from './url.js';
import { DeliveryQueue, StatusHub, wallClockNs } from '../base.js';
import {
  TransportError,
  type Delivery,
  type PublishReceipt,
  type Transport,
  type TransportOptions,
} from '../transport.js';

/** One in-process message bus; every `memory://NAME` transport with the same NAME shares it. */
class Bus {
  readonly subscribers = new Map<string, Set<{ queue: DeliveryQueue<Delivery>; owner: MemoryTransport }>>();
}
const buses = new Map<string, Bus>();

/**
 * In-process transport for tests and demos: delivery is asynchronous (next macrotask), like a real
 * network, and it can be taken down and brought back with `setDown` to exercise reconnect handling.
 */
export class MemoryTransport implements Transport {
  readonly kind = 'memory';
  readonly textOnly = false;
  private readonly bus: Bus;
  private readonly hub = new StatusHub();
  private readonly wallNs: () => bigint;
  private down = false;
  private closed = false;

  constructor(
    readonly displayUrl: string,
    opts: TransportOptions = {},
  ) {
    const name = new URL(displayUrl).host || 'default';
    let bus = buses.get(name);
    if (!bus) buses.set(name, (bus = new Bus()));
    this.bus = bus;
    this.wallNs = opts.wallNs ?? wallClockNs;
  }

  get state() {
    return this.hub.state;
  }

  async connect(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.closed) throw new TransportError('closed', 'transport is closed');
    this.hub.set({ type: 'connected' });
  }

  /** Simulates the broker going away (publishes fail, nothing is delivered) and coming back. */
  setDown(down: boolean): void {
    this.down = down;
    this.hub.set(down ? { type: 'disconnected', error: 'simulated outage' } : { type: 'connected' });
  }

  async publish(channel: string, payload: Uint8Array): Promise<PublishReceipt> {
    if (this.closed) throw new TransportError('closed', 'transport is closed');
    if (this.down || this.hub.state !== 'connected')
      throw new TransportError('not_connected', 'memory bus is down');
    const copy = payload.slice();
    const subs = this.bus.subscribers.get(channel);
    if (subs) {
      setImmediate(() => {
        // Each subscriber stamps arrival with its own clock; one whose side is down gets nothing.
        for (const s of subs)
          if (!s.owner.down) s.queue.push({ payload: copy, receivedNs: s.owner.wallNs() });
      });
    }
    return { ackNs: this.wallNs() };
  }

  subscribe(channel: string, signal: AbortSignal): AsyncIterable<Delivery> {
    const q = new DeliveryQueue<Delivery>();
    let subs = this.bus.subscribers.get(channel);
    if (!subs) this.bus.subscribers.set(channel, (subs = new Set()));
    const entry = { queue: q, owner: this };
    subs.add(entry);
    const stop = () => {
      subs.delete(entry);
      q.end();
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
    this.onClose.push(stop);
    return q;
  }

  private readonly onClose: (() => void)[] = [];

  status() {
    return this.hub.stream();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const f of this.onClose.splice(0)) f();
    this.hub.set({ type: 'closed' });
  }
}

export function create(url: string, opts?: TransportOptions): Transport {
  valueOrThrow(url, { value: url, problems: checkUrl(url) });
  return new MemoryTransport(url, opts);
}
