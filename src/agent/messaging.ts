import type { MessagingConfig } from '../config/messaging.js';
import { Canary } from '../messaging/canary.js';
import { Coalminer } from '../messaging/coalminer.js';
import type { MessagingMetrics } from '../sinks/prometheus/messaging-metrics.js';
import { backoffMs, redactUrl } from '../transports/base.js';
import { createTransport } from '../transports/registry.js';
import type { Transport } from '../transports/transport.js';

/**
 * The agent's canaries and coalminers and the transports they share. A transport whose broker is down at
 * start is retried in the background (with backoff) while everything else runs; its canaries and
 * coalminers start once it first connects.
 */
export class MessagingRuntime {
  readonly canaries: Canary[] = [];
  readonly coalminers: { c: Coalminer; transport: string; region: string }[] = [];
  private readonly transports = new Map<string, Transport>();
  private readonly abort = new AbortController();
  private readonly pending: Promise<void>[] = [];

  constructor(
    private readonly config: MessagingConfig,
    private readonly metrics: MessagingMetrics,
    private readonly log: (line: string) => void = () => {},
  ) {}

  get size(): number {
    return this.config.canaries.length + this.config.coalminers.length;
  }

  async start(): Promise<void> {
    for (const [name, url] of this.config.transports) {
      const users = [
        ...this.config.canaries.filter((c) => c.transportName === name),
        ...this.config.coalminers.filter((c) => c.transportName === name),
      ];
      if (users.length === 0) continue;
      this.pending.push(this.bring(name, url));
    }
  }

  /** Resolves once every transport connected at least once (or the runtime closed). For tests and demos. */
  async ready(): Promise<void> {
    await Promise.all(this.pending);
  }

  private async bring(name: string, url: string): Promise<void> {
    let transport: Transport;
    try {
      transport = await createTransport(url, { clientName: name });
    } catch (err) {
      this.log(`transport ${name}: ${(err as Error).message}`);
      return;
    }
    this.transports.set(name, transport);
    this.metrics.watchTransport(transport);
    for (let attempt = 0; !this.abort.signal.aborted; attempt++) {
      try {
        await transport.connect(this.abort.signal);
        break;
      } catch (err) {
        if (this.abort.signal.aborted) return;
        const delay = backoffMs(attempt, 500, 30_000);
        this.log(
          `transport ${name} (${redactUrl(url)}): ${(err as Error).message}; retrying in ${(delay / 1000).toFixed(1)} s`,
        );
        await new Promise((r) => setTimeout(r, delay).unref());
      }
    }
    if (this.abort.signal.aborted) return;
    for (const c of this.config.canaries.filter((x) => x.transportName === name)) {
      const canary = new Canary({
        name: c.name,
        transport,
        prefix: c.prefix,
        ratePerSecond: c.rate,
        sizeBytes: c.size,
        echo: c.echo,
        coalminers: c.coalminers,
        leaseMs: c.lease !== undefined ? c.lease * 1000 : undefined,
        observer: this.metrics.canaryObserver(c.name, transport.kind),
        log: this.log,
      });
      this.canaries.push(canary);
      await canary.start();
    }
    for (const c of this.config.coalminers.filter((x) => x.transportName === name)) {
      const coalminer = new Coalminer({
        name: c.name,
        transport,
        register: c.register,
        prefix: c.prefix,
        region: c.region,
        sequence: { lossTimeoutMs: c.lossTimeout * 1000, reorderWindow: c.reorderWindow },
        observer: this.metrics.coalminerObserver(c.name, transport.kind, c.region),
        log: this.log,
      });
      this.coalminers.push({ c: coalminer, transport: transport.kind, region: c.region });
      this.metrics.watchCoalminer(coalminer, transport.kind, c.region);
      await coalminer.start();
    }
  }

  async close(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled(this.coalminers.map(({ c }) => c.stop()));
    await Promise.allSettled(this.canaries.map((c) => c.stop()));
    await Promise.allSettled([...this.transports.values()].map((t) => t.close()));
  }
}
