import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** Port the proxy listens on (127.0.0.1). */
  port: number;
  /** Delay added to every chunk in each direction, in ms (changeable while running). */
  delayMs: { toServer: number; toClient: number };
  /**
   * How long each delayed chunk was actually held, in ms, with when it left (performance.now()): on a
   * loaded machine the proxy itself runs late, so this, not delayMs, is the delay a test controls.
   */
  readonly held: { toServer: { at: number; ms: number }[]; toClient: { at: number; ms: number }[] };
  /** Drops every connection and refuses new ones until `up()`: a broker outage, as the client sees it. */
  down(): void;
  up(): void;
  /** Connections accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

/**
 * A TCP proxy of the tests' own between a client and a real server on loopback, to inject a known delay
 * (each chunk is held for delayMs, order kept) or an outage. `tc netem` is not available here.
 */
export async function startTcpProxy(target: { host: string; port: number }, delayMs = 0): Promise<TcpProxy> {
  const pairs = new Set<{ a: Socket; b: Socket }>();
  let isDown = false;
  let accepted = 0;
  let listening: Server | undefined;
  const delays = { toServer: delayMs, toClient: delayMs };
  const held: TcpProxy['held'] = { toServer: [], toClient: [] };

  const pipeWithDelay = (from: Socket, to: Socket, which: 'toServer' | 'toClient') => {
    // Chunks leave in order, each no earlier than its arrival + delay. Timers alone are only good to
    // about a millisecond, so the last stretch is waited out with setImmediate: sub-millisecond accuracy
    // without blocking the event loop.
    const queue: { due: number; arrived: number; chunk: Buffer }[] = [];
    let pumping = false;
    const pump = () => {
      const now = performance.now();
      while (queue.length > 0 && queue[0]!.due <= now) {
        const { chunk, arrived } = queue.shift()!;
        if (to.writable) to.write(chunk);
        const log = held[which];
        if (log.length < 1_000_000) log.push({ at: now, ms: now - arrived });
      }
      if (queue.length === 0) {
        pumping = false;
        return;
      }
      const wait = queue[0]!.due - now;
      if (wait > 2) setTimeout(pump, wait - 1.5);
      else setImmediate(pump);
    };
    from.on('data', (chunk: Buffer) => {
      const d = delays[which];
      if (d <= 0 && queue.length === 0) {
        to.write(chunk);
        return;
      }
      const arrived = performance.now();
      queue.push({ due: arrived + d, arrived, chunk });
      if (!pumping) {
        pumping = true;
        pump();
      }
    });
  };

  const onConnection = (client: Socket) => {
    if (isDown) {
      client.destroy();
      return;
    }
    accepted++;
    const upstream = connect(target.port, target.host);
    const pair = { a: client, b: upstream };
    pairs.add(pair);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    pipeWithDelay(client, upstream, 'toServer');
    pipeWithDelay(upstream, client, 'toClient');
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  };

  const listen = async (port: number): Promise<number> => {
    const server = createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    listening = server;
    return (server.address() as AddressInfo).port;
  };

  const port = await listen(0);
  const down = () => {
    isDown = true;
    for (const p of pairs) {
      p.a.destroy();
      p.b.destroy();
    }
    pairs.clear();
  };
  return {
    port,
    delayMs: delays,
    held,
    get accepted() {
      return accepted;
    },
    down,
    up() {
      isDown = false;
    },
    async close() {
      down();
      await new Promise<void>((r) => (listening ? listening.close(() => r()) : r()));
    },
  };
}
