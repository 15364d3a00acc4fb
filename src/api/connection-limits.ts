import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIPv6, type Socket } from 'node:net';

/**
 * What the agent's HTTP server lets one connection do, and how many it keeps. A client that opens
 * connections and sends nothing must not use up the descriptors the probes need (issue 9, item 6).
 */
export interface ConnectionLimits {
  /**
   * Most connections open at once; beyond it a new one is closed at once. Default 512 (Prometheus'
   * --web.max-connections), lowered to half the process's open-file limit so probes keep the other half.
   */
  maxConnections?: number;
  /** Most connections from one client address (an IPv6 /64 counts as one address). Default 64. */
  maxConnectionsPerClient?: number;
  /** A request's headers must have arrived this long after it began (ms). Default 10 s. */
  headersTimeoutMs?: number;
  /** A whole request, headers and body, must have arrived this long after it began (ms). Default 30 s. */
  requestTimeoutMs?: number;
  /** A kept-alive connection with no next request is closed after this (ms). Default 5 s. */
  keepAliveTimeoutMs?: number;
  /**
   * A connection on which nothing moves for this long (ms) is closed, unless the server is still
   * answering a request on it and has nothing waiting to be sent (a slow check, an event stream between
   * keepalives). Closes connections that never send a byte without waiting for the headers timeout's
   * periodic check. Default 10 s.
   */
  idleTimeoutMs?: number;
  /** The soft open-file limit; default read from /proc/self/limits (undefined where there is none). */
  openFileLimit?: number;
}

export type ResolvedLimits = Required<Omit<ConnectionLimits, 'openFileLimit'>>;

export const DEFAULT_CONNECTION_LIMITS: ResolvedLimits = {
  maxConnections: 512,
  maxConnectionsPerClient: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 10_000,
};

export type RefusedReason = 'max_connections' | 'max_per_client';

export interface ConnectionStats {
  /** Connections open now. */
  open: number;
  /** The cap in force: maxConnections, or less when the open-file limit is low. */
  max: number;
  maxPerClient: number;
  /** Connections closed on arrival, by reason. */
  refused: Record<RefusedReason, number>;
  /** Connections closed by the idle timeout. */
  idleClosed: number;
}

/** The soft RLIMIT_NOFILE of this process, from /proc/self/limits; undefined where it cannot be read. */
export function readOpenFileLimit(limitsFile = '/proc/self/limits'): number | undefined {
  let text: string;
  try {
    text = readFileSync(limitsFile, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+(\S+)/m.exec(text);
  if (!m) return undefined;
  return m[1] === 'unlimited' ? Infinity : Number(m[1]) || undefined;
}

/** Connections the server may hold: at most half the open-file limit, the rest is for probes and the store. */
export function connectionCap(maxConnections: number, openFileLimit: number | undefined): number {
  if (openFileLimit === undefined || !Number.isFinite(openFileLimit)) return maxConnections;
  return Math.max(1, Math.min(maxConnections, Math.floor(openFileLimit / 2)));
}

/**
 * The address a per-client limit counts against: an IPv4 address (also when IPv4-mapped), or the /64 of
 * an IPv6 one, since one host usually holds a whole /64.
 */
export function clientKey(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const bare = address.split('%')[0]!;
  const [head = '', tail] = bare.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  // A trailing dotted IPv4 part stands for two groups.
  const width = (gs: string[]) => gs.length + (gs.at(-1)?.includes('.') ? 1 : 0);
  const zeros = tail === undefined ? 0 : 8 - width(h) - width(t);
  const groups = [...h, ...Array<string>(zeros).fill('0'), ...t];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

export interface LimitedServer {
  server: Server;
  stats(): ConnectionStats;
}

/**
 * An http.Server with the limits applied: the cap on connections (Node's maxConnections, which closes an
 * excess one before any parsing), the per-client cap, and Node's headers, request and keep-alive timeouts
 * checked every second or faster (Node checks them only every 30 s by default, so a silent connection
 * would otherwise live 30 to 40 s) plus the idle timeout.
 */
export function createLimitedServer(
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
  limits: ConnectionLimits = {},
  onCapLowered?: (info: { requested: number; cap: number; openFileLimit: number }) => void,
): LimitedServer {
  const { openFileLimit, ...given } = limits;
  const l: ResolvedLimits = { ...DEFAULT_CONNECTION_LIMITS, ...definedOnly(given) };
  const fileLimit = openFileLimit ?? readOpenFileLimit();
  const cap = connectionCap(l.maxConnections, fileLimit);
  if (cap < l.maxConnections && fileLimit !== undefined)
    onCapLowered?.({ requested: l.maxConnections, cap, openFileLimit: fileLimit });
  const server = createServer(
    {
      headersTimeout: l.headersTimeoutMs,
      // Node requires requestTimeout >= headersTimeout.
      requestTimeout: Math.max(l.requestTimeoutMs, l.headersTimeoutMs),
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(l.headersTimeoutMs / 4))),
    },
    onRequest,
  );
  server.keepAliveTimeout = l.keepAliveTimeoutMs;
  server.maxConnections = cap;

  const refused: Record<RefusedReason, number> = { max_connections: 0, max_per_client: 0 };
  const perClient = new Map<string, number>();
  const answering = new Map<Socket, number>();
  let open = 0;
  let idleClosed = 0;

  server.on('drop', () => refused.max_connections++);
  server.on('connection', (socket: Socket) => {
    const key = clientKey(socket.remoteAddress);
    const n = perClient.get(key) ?? 0;
    if (n >= l.maxConnectionsPerClient) {
      refused.max_per_client++;
      socket.destroy();
      return;
    }
    perClient.set(key, n + 1);
    open++;
    socket.once('close', () => {
      open--;
      const left = (perClient.get(key) ?? 1) - 1;
      if (left > 0) perClient.set(key, left);
      else perClient.delete(key);
      answering.delete(socket);
    });
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    answering.set(socket, (answering.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const left = (answering.get(socket) ?? 1) - 1;
      if (left > 0) answering.set(socket, left);
      else answering.delete(socket);
    });
  });
  // With a listener, Node leaves the decision to close a timed-out socket to us.
  server.setTimeout(l.idleTimeoutMs, (socket: Socket) => {
    // The wait is the server's own (a probe still running, an event stream between keepalives): keep it.
    // Anything waiting to be sent means the client stopped reading.
    if ((answering.get(socket) ?? 0) > 0 && socket.writableLength === 0) return;
    idleClosed++;
    socket.destroy();
  });

  return {
    server,
    stats: () => ({
      open,
      max: cap,
      maxPerClient: l.maxConnectionsPerClient,
      refused: { ...refused },
      idleClosed,
    }),
  };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
