import { Redis, type RedisOptions } from 'ioredis';
import { createRequire } from 'node:module';
import type standaloneModule from 'ioredis/built/connectors/StandaloneConnector.js';
import type { StandaloneConnectionOptions } from 'ioredis/built/connectors/StandaloneConnector.js';
import { backoffMs } from '../base.js';
import { InFlightCommands, LinkDownError, type LinkListener } from '../links.js';

export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describeError(err.errors[0]);
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code} ${err.message}` : err.message;
  }
  return String(err);
}

const noop = () => {};
// require(), as ESM import and vitest disagree on what the default export of this CommonJS file is.
const { default: StandaloneConnector } = createRequire(import.meta.url)(
  'ioredis/built/connectors/StandaloneConnector.js',
) as typeof standaloneModule;

/**
 * ioredis's own connector, with an error listener that stays on the socket. ioredis listens for socket
 * errors with once(), and a TLS handshake that fails can raise a second one (the server's alert that
 * answers ours), which then had no listener and ended the process as an uncaught exception. The first
 * error still reaches ioredis, which reports it and closes the link.
 */
class SocketErrorsHeard extends StandaloneConnector {
  // ioredis hands a connector the client's options, which include these.
  constructor(options: unknown) {
    super(options as StandaloneConnectionOptions);
  }

  override async connect(...args: Parameters<InstanceType<typeof StandaloneConnector>['connect']>) {
    const stream = await super.connect(...args);
    stream.on('error', noop);
    return stream;
  }
}

/**
 * One ioredis connection whose reconnects follow our backoff and whose commands fail fast: no offline
 * queue and no resending after a reconnect, so a publish is never silently delivered late, and a command
 * in flight when the connection drops rejects at once instead of hanging.
 */
export class RedisLink {
  readonly client: Redis;
  private everReady = false;
  private closing = false;
  private isUp = false;
  private epoch = 0;
  private attempt = 0;
  private lastError: string | undefined;
  private readonly inFlight = new InFlightCommands();
  private readonly upWaiters = new Set<(up: boolean) => void>();

  constructor(
    options: RedisOptions,
    reconnect: { initialMs?: number; maxMs?: number },
    private readonly listener: LinkListener,
    /** Runs after every (re)connection before the link counts as up: re-SUBSCRIBE, XGROUP CREATE. */
    private readonly prepare: (client: Redis) => Promise<void> = async () => {},
    /** Whether to keep retrying when the very first connection fails (false: connect() reports it). */
    retryFirst = false,
  ) {
    this.client = new Redis({
      ...options,
      lazyConnect: true,
      Connector: SocketErrorsHeard,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      autoResubscribe: false,
      maxRetriesPerRequest: null,
      retryStrategy: (times: number) => {
        if (this.closing || (!this.everReady && !retryFirst)) return null;
        this.attempt = times;
        return backoffMs(times - 1, reconnect.initialMs, reconnect.maxMs);
      },
    });
    this.client.on('error', (err: unknown) => {
      this.lastError = describeError(err);
    });
    this.client.on('close', () => this.onClose());
    this.client.on('end', () => this.wakeUpWaiters(false));
    this.client.on('reconnecting', (delayMs: number) => {
      if (!this.closing) this.listener.reconnecting(this.attempt, delayMs, this.lastError);
    });
    this.client.on('ready', () => void this.onReady());
  }

  get up(): boolean {
    return this.isUp;
  }

  get error(): string | undefined {
    return this.lastError;
  }

  /** First connection; rejects with the reason when it fails (unless retryFirst). */
  async open(): Promise<void> {
    const up = this.waitUp();
    try {
      await this.client.connect();
    } catch (err) {
      if (!this.lastError) this.lastError = describeError(err);
    }
    if (!(await up)) throw new LinkDownError(this.lastError ?? 'connection closed');
  }

  /** Resolves true once the link is up (now or later), false if it closes for good first. */
  waitUp(): Promise<boolean> {
    if (this.isUp) return Promise.resolve(true);
    if (this.closing || this.client.status === 'end') return Promise.resolve(false);
    return new Promise((resolve) => this.upWaiters.add(resolve));
  }

  /** Runs a command, rejecting with LinkDownError if the link is not up or drops before the reply. */
  run<T>(command: (client: Redis) => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(new LinkDownError('closed'));
    if (this.client.status !== 'ready') {
      return Promise.reject(new LinkDownError(`not connected (${this.lastError ?? this.client.status})`));
    }
    return this.inFlight.track(() => command(this.client));
  }

  /** Drops the connection because of `err`; it reconnects with backoff like after any outage. */
  drop(err: unknown): void {
    if (this.closing) return;
    this.lastError = describeError(err);
    this.isUp = false;
    this.client.disconnect(true);
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    this.isUp = false;
    this.client.disconnect();
    this.inFlight.failAll('closed');
    this.wakeUpWaiters(false);
  }

  private async onReady(): Promise<void> {
    const epoch = this.epoch;
    try {
      await this.prepare(this.client);
    } catch (err) {
      // The connection is unusable for us without its subscriptions: drop it and let the backoff retry.
      if (epoch === this.epoch && !this.closing) {
        this.lastError = describeError(err);
        this.client.disconnect(true);
      }
      return;
    }
    if (epoch !== this.epoch || this.closing || this.client.status !== 'ready') return;
    this.everReady = true;
    this.isUp = true;
    this.lastError = undefined;
    this.wakeUpWaiters(true);
    this.listener.up();
  }

  private onClose(): void {
    this.epoch++;
    this.isUp = false;
    this.inFlight.failAll(`connection lost (${this.lastError ?? 'closed by the server'})`);
    forgetAutoPipelines(this.client);
    if (!this.closing && this.everReady) this.listener.down(this.lastError ?? 'connection closed');
  }

  private wakeUpWaiters(up: boolean): void {
    for (const f of [...this.upWaiters]) f(up);
    this.upWaiters.clear();
  }
}

/**
 * ioredis's auto-pipelining marks a pipeline as running per slot and queues every later command behind
 * it until its callback fires. A pipeline whose connection dropped mid-flight can leave that mark behind
 * (seen in CI: after a broker outage every XADD timed out on a connected link), and then no command on
 * the new connection ever goes out. When a connection closes, every command we issued on it has
 * already been failed (inFlight.failAll), so forget its pipelines: queued ones are not sent late, and
 * the next command starts a fresh pipeline.
 */
export function forgetAutoPipelines(client: Redis): void {
  const internals = client as unknown as {
    _runningAutoPipelines?: Set<string>;
    _autoPipelines?: Map<string, unknown>;
  };
  internals._runningAutoPipelines?.clear();
  internals._autoPipelines?.clear();
}
