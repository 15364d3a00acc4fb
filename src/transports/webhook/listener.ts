import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Delivery } from '../transport.js';
import type { DeliveryQueue } from '../base.js';

export const CHANNEL_PATTERN = /^[A-Za-z0-9_.-]{1,255}$/;

export interface ListenerOptions {
  /** Path prefix, '' or '/hooks'. */
  base: string;
  /** Largest accepted body in bytes. */
  maxBody: number;
}

export interface Route {
  queue: DeliveryQueue<Delivery>;
  wallNs: () => bigint;
}

/**
 * The HTTP server that receives webhooks for one listen address. Transports in one process that name the same
 * address share it (only one socket can bind a port), which is what lets one URL be both canary and coalminer.
 */
export class WebhookListener {
  private readonly server: Server;
  private readonly routes = new Map<string, Set<Route>>();
  private refs = 0;
  private closing: Promise<void> | undefined;
  /** Requests answered with a 4xx, by status: bad input is counted, never fatal. */
  readonly refused = new Map<number, number>();
  /** Messages for channels nobody here subscribes to, answered 202 and dropped. */
  unrouted = 0;

  private constructor(
    readonly host: string,
    private readonly opts: ListenerOptions,
  ) {
    this.server = createServer((req, res) => this.handle(req, res));
    // Bounds on what a misbehaving sender can hold open.
    this.server.maxConnections = 1024;
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? 0;
  }

  /** Shared listeners by `host:port`; a port-0 request always gets a new server. */
  private static readonly shared = new Map<string, Promise<WebhookListener>>();

  static acquire(host: string, port: number, opts: ListenerOptions): Promise<WebhookListener> {
    const key = `${host}:${port}`;
    let p = port === 0 ? undefined : WebhookListener.shared.get(key);
    if (!p) {
      const listener = new WebhookListener(host, opts);
      p = listener.listen(port).then(
        () => {
          WebhookListener.shared.set(`${host}:${listener.port}`, p!);
          return listener;
        },
        (err: unknown) => {
          WebhookListener.shared.delete(key);
          throw err;
        },
      );
      if (port !== 0) WebhookListener.shared.set(key, p);
    }
    return p.then((l) => {
      // One server has one path prefix and one body limit; sharing it under other settings would ignore them.
      if (l.opts.base !== opts.base || l.opts.maxBody !== opts.maxBody) {
        throw new Error(
          `this process already receives webhooks there with path "${l.opts.base || '/'}" and maxBody=${l.opts.maxBody}; use the same for every URL that listens on ${key}`,
        );
      }
      l.refs++;
      return l;
    });
  }

  /** Drops one reference; the last one closes the server. */
  async release(): Promise<void> {
    if (--this.refs > 0) return;
    WebhookListener.shared.delete(`${this.host}:${this.port}`);
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  addRoute(channel: string, route: Route): () => void {
    let set = this.routes.get(channel);
    if (!set) this.routes.set(channel, (set = new Set()));
    set.add(route);
    return () => {
      set.delete(route);
      if (set.size === 0 && this.routes.get(channel) === set) this.routes.delete(channel);
    };
  }

  private listen(port: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, this.host, () => {
        this.server.off('error', reject);
        this.server.on('error', () => {}); // after listening, errors concern single connections
        resolve();
      });
    });
  }

  private refuse(
    res: ServerResponse,
    status: number,
    message: string,
    headers: Record<string, string> = {},
  ): void {
    this.refused.set(status, (this.refused.get(status) ?? 0) + 1);
    if (res.headersSent) return;
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
    res.end(message + '\n');
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    req.on('error', () => {});
    res.on('error', () => {});
    const path = (req.url ?? '/').split('?')[0]!;
    const prefix = this.opts.base + '/';
    const channel = path.startsWith(prefix) ? path.slice(prefix.length) : '';
    if (!CHANNEL_PATTERN.test(channel)) {
      return this.refuse(res, 404, `not found: webhooks are POST ${prefix}<channel>`);
    }
    if (req.method !== 'POST')
      return this.refuse(res, 405, 'method not allowed: use POST', { allow: 'POST' });
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/octet-stream') {
      return this.refuse(res, 415, 'unsupported media type: send application/octet-stream');
    }
    const max = this.opts.maxBody;
    const tooLarge = () =>
      // Closing the connection saves reading the rest of a body we will not use.
      this.refuse(res, 413, `payload too large: at most ${max} bytes`, { connection: 'close' });
    if (Number(req.headers['content-length'] ?? 0) > max) return tooLarge();

    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > max) {
        over = true;
        chunks.length = 0;
        tooLarge();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (over) return;
      const routes = this.routes.get(channel);
      if (!routes) {
        // As on any pub/sub system, a message nobody subscribes to is taken and dropped; 202 tells it apart.
        this.unrouted++;
        res.writeHead(202, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`no subscriber for channel ${channel}: dropped\n`);
        return;
      }
      const payload = Buffer.concat(chunks, size);
      // Each subscriber's own clock, at the moment the whole body is here.
      for (const r of routes) r.queue.push({ payload, receivedNs: r.wallNs() });
      res.writeHead(204);
      res.end();
    });
  }
}
