/**
 * The coalmine relay: a small WebSocket pub/sub hub, the embedded default messaging path
 * (`coalmine relay --listen HOST:PORT`). It is a hop: it stamps every message with its receive time.
 *
 * Protocol, one WebSocket per client at ws://HOST:PORT/ (any path). uint64 values in JSON are decimal strings.
 *
 *   relay → client, text, on connect   {"op":"hello","version":1,"hop":"<hop id>","maxPayload":N,"heartbeatMs":N}
 *   client → relay, text               {"op":"sub","channel":"a.b"}   {"op":"unsub","channel":"a.b"}
 *   relay → client, text               {"op":"subscribed","channel":"a.b"}   {"op":"unsubscribed","channel":"a.b"}
 *   client → relay, binary (publish)   u8 channel length | channel (ASCII) | u64 BE publish id    | payload
 *   relay → subscriber, binary         u8 channel length | channel (ASCII) | u64 BE relay recv ns | payload
 *   relay → publisher, text            {"op":"ack","id":"N","ns":"<relay wall-clock ns, after fan-out>"}
 *   relay → client, text, on a failure {"op":"error","code":"...","message":"...","id"?:"N","channel"?:"..."}
 *
 * A delivery is the publish frame with the id field overwritten by the relay's receive time (wall-clock ns),
 * so the relay forwards the very buffer it received. Error codes: bad_frame (not JSON, unknown op, too short),
 * bad_channel (empty, over 255 bytes, or outside [A-Za-z0-9_.-]), too_large (payload over maxPayload; it is
 * not forwarded), too_many_subscriptions. A publisher that subscribed to the channel receives its own message.
 *
 * Bounds: payload size (frames over twice the limit close the connection with 1009, since reading them costs
 * memory), subscriptions per client, clients (more are refused with HTTP 503), and bytes queued to each client:
 * a client that does not read (its bufferedAmount over maxBufferedBytes) is disconnected and counted, so a slow
 * subscriber cannot exhaust the relay's memory or hold others back. Pings every heartbeatMs find dead clients.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { wallClockNs } from '../base.js';

export interface RelayOptions {
  /** Interface to listen on, e.g. 127.0.0.1 or 0.0.0.0. */
  host: string;
  /** Port; 0 picks a free one (see the returned `port`). */
  port: number;
  /** Largest publish payload in bytes; default 1 MiB. */
  maxPayload?: number;
  /** Default 1000. */
  maxSubscriptionsPerClient?: number;
  /** Default 10000. */
  maxClients?: number;
  /** Bytes queued to one client beyond which it is disconnected as too slow; default 8 MiB. */
  maxBufferedBytes?: number;
  /** Ping interval; a client that has not answered the previous ping is dropped. Default 15000. */
  heartbeatMs?: number;
  /** This hop's name, sent in the hello frame; default `relay@<hostname>:<port>`. */
  hopId?: string;
  /** Clock for the receive stamps; wall-clock ns. */
  wallNs?: () => bigint;
}

export interface RelayStats {
  clients: number;
  channels: number;
  subscriptions: number;
  /** Publishes accepted and fanned out. */
  published: number;
  /** Messages handed to subscribers. */
  delivered: number;
  /** Frames answered with an error frame (bad_frame, bad_channel, too_many_subscriptions). */
  invalidFrames: number;
  /** Publishes refused as too_large. */
  oversized: number;
  /** Clients disconnected because their send buffer exceeded maxBufferedBytes. */
  slowClientsDropped: number;
  /** Clients dropped for not answering a ping. */
  deadClientsDropped: number;
  /** Connections refused because maxClients were connected. */
  refusedClients: number;
}

export interface Relay {
  /** ws:// URL clients can use (a wildcard listen address is given as loopback). */
  readonly url: string;
  readonly port: number;
  readonly hopId: string;
  stats(): RelayStats;
  /** Disconnects every client and stops listening. Idempotent. */
  close(): Promise<void>;
}

export const RELAY_PROTOCOL_VERSION = 1;
/** Channel names as coalmine uses them; the relay holds the same rule as the client. */
export const CHANNEL_PATTERN = /^[A-Za-z0-9_.-]{1,255}$/;

interface Client {
  ws: WebSocket;
  channels: Set<string>;
  alive: boolean;
}

export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const maxPayload = opts.maxPayload ?? 1024 * 1024;
  const maxSubs = opts.maxSubscriptionsPerClient ?? 1000;
  const maxClients = opts.maxClients ?? 10_000;
  const maxBuffered = opts.maxBufferedBytes ?? 8 * 1024 * 1024;
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const wallNs = opts.wallNs ?? wallClockNs;

  let hopId = opts.hopId ?? ''; // the default names the port, known once listening
  const clients = new Set<Client>();
  const channels = new Map<string, Set<Client>>();
  const counters = {
    published: 0,
    delivered: 0,
    invalidFrames: 0,
    oversized: 0,
    slowClientsDropped: 0,
    deadClientsDropped: 0,
    refusedClients: 0,
  };

  const http: Server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' });
    res.end('coalmine relay: connect with a WebSocket client (ws://HOST:PORT/)\n');
  });
  // Up to twice the payload limit is read and answered with too_large; beyond that ws closes with 1009.
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 2 * maxPayload + 1024,
    perMessageDeflate: false,
  });
  wss.on('error', () => {}); // only re-emitted server errors, which `http` reports itself

  http.on('clientError', (_err, socket) => socket.destroy());
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (clients.size >= maxClients) {
      counters.refusedClients++;
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws));
  });

  const dropClient = (c: Client) => {
    if (!clients.delete(c)) return;
    for (const ch of c.channels) {
      const subs = channels.get(ch);
      subs?.delete(c);
      if (subs?.size === 0) channels.delete(ch);
    }
    c.channels.clear();
  };

  /** Sends unless the client is too far behind, in which case it is cut off rather than buffered for. */
  const send = (c: Client, data: Buffer | string): boolean => {
    if (c.ws.readyState !== WebSocket.OPEN) return false;
    if (c.ws.bufferedAmount > maxBuffered) {
      counters.slowClientsDropped++;
      dropClient(c);
      c.ws.terminate();
      return false;
    }
    c.ws.send(data, { binary: typeof data !== 'string' });
    return true;
  };

  const sendError = (
    c: Client,
    code: string,
    message: string,
    extra: { id?: bigint; channel?: string } = {},
  ) => {
    if (code !== 'too_large') counters.invalidFrames++;
    const frame: Record<string, string> = { op: 'error', code, message };
    if (extra.id !== undefined) frame.id = extra.id.toString();
    if (extra.channel !== undefined) frame.channel = extra.channel;
    send(c, JSON.stringify(frame));
  };

  const onControl = (c: Client, text: string) => {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return sendError(c, 'bad_frame', 'text frames must be JSON control frames');
    }
    const { op, channel } = (typeof msg === 'object' && msg !== null ? msg : {}) as Record<string, unknown>;
    if (op !== 'sub' && op !== 'unsub') return sendError(c, 'bad_frame', `unknown op ${JSON.stringify(op)}`);
    if (typeof channel !== 'string' || !CHANNEL_PATTERN.test(channel)) {
      return sendError(c, 'bad_channel', 'channel must be 1-255 characters of [A-Za-z0-9_.-]');
    }
    if (op === 'sub') {
      if (!c.channels.has(channel)) {
        if (c.channels.size >= maxSubs) {
          return sendError(c, 'too_many_subscriptions', `at most ${maxSubs} subscriptions per client`, {
            channel,
          });
        }
        c.channels.add(channel);
        let subs = channels.get(channel);
        if (!subs) channels.set(channel, (subs = new Set()));
        subs.add(c);
      }
      send(c, JSON.stringify({ op: 'subscribed', channel }));
    } else {
      if (c.channels.delete(channel)) {
        const subs = channels.get(channel);
        subs?.delete(c);
        if (subs?.size === 0) channels.delete(channel);
      }
      send(c, JSON.stringify({ op: 'unsubscribed', channel }));
    }
  };

  const onPublish = (c: Client, frame: Buffer) => {
    const receivedNs = wallNs();
    const len = frame.length > 0 ? frame[0]! : 0;
    if (len === 0 || frame.length < 1 + len + 8) {
      return sendError(c, 'bad_frame', 'publish frame: u8 channel length, channel, u64 id, payload');
    }
    const channel = frame.toString('latin1', 1, 1 + len);
    const id = frame.readBigUInt64BE(1 + len);
    if (!CHANNEL_PATTERN.test(channel)) {
      return sendError(c, 'bad_channel', 'channel must be 1-255 characters of [A-Za-z0-9_.-]', { id });
    }
    const payloadBytes = frame.length - 1 - len - 8;
    if (payloadBytes > maxPayload) {
      counters.oversized++;
      return sendError(c, 'too_large', `payload of ${payloadBytes} bytes is over the relay's ${maxPayload}`, {
        id,
      });
    }
    // The id's bytes become the receive stamp: subscribers get the received buffer itself, no copy.
    frame.writeBigUInt64BE(receivedNs, 1 + len);
    counters.published++;
    const subs = channels.get(channel);
    if (subs) {
      for (const s of [...subs]) if (send(s, frame)) counters.delivered++;
    }
    send(c, JSON.stringify({ op: 'ack', id: id.toString(), ns: wallNs().toString() }));
  };

  const onConnection = (ws: WebSocket) => {
    const c: Client = { ws, channels: new Set(), alive: true };
    clients.add(c);
    // Every error is followed by 'close', where the client is dropped; protocol violations are counted.
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') counters.oversized++;
      else if (err.code?.startsWith('WS_ERR_')) counters.invalidFrames++;
    });
    ws.on('close', () => dropClient(c));
    ws.on('pong', () => (c.alive = true));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      c.alive = true;
      const buf = Buffer.isBuffer(data)
        ? data
        : Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.from(data);
      if (isBinary) onPublish(c, buf);
      else onControl(c, buf.toString('utf8'));
    });
    send(
      c,
      JSON.stringify({ op: 'hello', version: RELAY_PROTOCOL_VERSION, hop: hopId, maxPayload, heartbeatMs }),
    );
  };

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) =>
      reject(new Error(`relay cannot listen on ${opts.host}:${opts.port}: ${err.message}`));
    http.once('error', onError);
    http.listen(opts.port, opts.host, () => {
      http.off('error', onError);
      resolve();
    });
  });
  http.on('error', () => {}); // after listening, errors concern single connections, handled above

  const port = (http.address() as AddressInfo).port;
  hopId ||= `relay@${hostname()}:${port}`;
  const heartbeat = setInterval(() => {
    for (const c of clients) {
      if (!c.alive) {
        counters.deadClientsDropped++;
        dropClient(c);
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      if (c.ws.readyState === WebSocket.OPEN) c.ws.ping();
    }
  }, heartbeatMs);
  heartbeat.unref();

  const urlHost =
    opts.host === '0.0.0.0' || opts.host === '' ? '127.0.0.1' : opts.host === '::' ? '::1' : opts.host;
  let closing: Promise<void> | undefined;

  return {
    url: `ws://${urlHost.includes(':') ? `[${urlHost}]` : urlHost}:${port}/`,
    port,
    hopId,
    stats: () => ({
      clients: clients.size,
      channels: channels.size,
      subscriptions: [...clients].reduce((n, c) => n + c.channels.size, 0),
      ...counters,
    }),
    close() {
      closing ??= (async () => {
        clearInterval(heartbeat);
        for (const c of [...clients]) {
          dropClient(c);
          c.ws.terminate();
        }
        wss.close();
        await new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        });
      })();
      return closing;
    },
  };
}
