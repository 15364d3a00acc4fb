import type { MessagingConfig } from '../config/messaging.js';
import { silentLogger, type Logger } from '../core/log.js';
import type { Canary } from '../messaging/canary.js';
import type { Coalminer } from '../messaging/coalminer.js';
import { teeCoalminerObserver, type CoalminerObserver, type MessagingSink } from '../messaging/observer.js';
import { backoffMs, redactUrl } from '../transports/base.js';
import { createTransport } from '../transports/registry.js';
import { logTransportStatus } from '../transports/status-log.js';
import type { Transport } from '../transports/transport.js';

/**
 * The agent's canaries and coalminers and the transports they share. A transport whose broker is down at
 * start is retried in the background (with backoff) while everything else runs; its canaries and
 * coalminers start once it first connects.
 */
export class MessagingRuntime {
  readonly canaries: Canary[] = [];
  /** The transport kind of each running canary, by name (for the store's schedule series). */
  private readonly canaryKinds = new Map<string, string>();
  readonly coalminers: { c: Coalminer; transport: string; region: string }[] = [];
  private readonly transports = new Map<string, Transport>();
  private readonly abort = new AbortController();
  private readonly pending: Promise<void>[] = [];

  constructor(
    private readonly config: MessagingConfig,
    private readonly metrics: MessagingSink,
    private readonly log: Logger = silentLogger,
    /** An extra observer per coalminer (alerting), besides the metrics. */
    private readonly tap?: (coalminer: string) => CoalminerObserver,
  ) {}

  transportOf(canary: string): string {
    return this.canaryKinds.get(canary) ?? '';
  }

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
    const log = this.log.child({ component: 'transport', transportName: name, url: redactUrl(url) });
    let transport: Transport;
    try {
      transport = await createTransport(url, { clientName: name }, log);
    } catch (err) {
      log.error('transport not created; its canaries and coalminers do not run', { err });
      return;
    }
    this.transports.set(name, transport);
    this.metrics.watchTransport(transport);
    const tlog = log.child({ transport: transport.kind });
    void logTransportStatus(transport, tlog);
    for (let attempt = 0; !this.abort.signal.aborted; attempt++) {
      try {
        await transport.connect(this.abort.signal);
        break;
      } catch (err) {
        if (this.abort.signal.aborted) return;
        const delay = backoffMs(attempt, 500, 30_000);
        tlog.warn('transport connect failed; retrying', { attempt: attempt + 1, retryInMs: delay, err });
        await new Promise((r) => setTimeout(r, delay).unref());
      }
    }
    if (this.abort.signal.aborted) return;
    // Loaded here, not at the top: an agent without canaries or coalminers never loads them.
    const [{ Canary }, { Coalminer }] = await Promise.all([
      import('../messaging/canary.js'),
      import('../messaging/coalminer.js'),
    ]);
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
        maxCoalminers: c.maxCoalminers,
        allow: c.allow,
        ...(c.secret !== undefined ? { secret: c.secret } : {}),
        observer: this.metrics.canaryObserver(c.name, transport.kind),
        log: this.log,
      });
      this.canaries.push(canary);
      this.canaryKinds.set(c.name, transport.kind);
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
        ...(c.secret !== undefined ? { secret: c.secret } : {}),
        observer: this.tap
          ? teeCoalminerObserver(
              this.metrics.coalminerObserver(c.name, transport.kind, c.region),
              this.tap(c.name),
            )
          : this.metrics.coalminerObserver(c.name, transport.kind, c.region),
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
