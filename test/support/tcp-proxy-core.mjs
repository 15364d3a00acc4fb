// @ts-check
// The TCP proxy the tests put between a client and a real server, in plain JavaScript so that it also
// runs as a process of its own (`node tcp-proxy-core.mjs`, driven over IPC): a proxy that shares the
// event loop of the code under test adds that loop's wakeups to what it measures. Typed in
// tcp-proxy-core.d.mts; tests import it through tcp-proxy.ts.
import { connect, createServer } from 'node:net';
import { pathToFileURL } from 'node:url';

/** Wall-clock ms with sub-millisecond resolution, comparable between processes. */
export const nowMs = () => performance.timeOrigin + performance.now();

/**
 * @param {{ host: string; port: number }} target
 * @param {number} [delayMs]
 * @returns {Promise<import('./tcp-proxy-core.mjs').TcpProxy>}
 */
export async function startTcpProxy(target, delayMs = 0) {
  /** @type {Set<{ a: import('node:net').Socket; b: import('node:net').Socket }>} */
  const pairs = new Set();
  let isDown = false;
  let accepted = 0;
  /** @type {import('node:net').Server | undefined} */
  let listening;
  const delays = { toServer: delayMs, toClient: delayMs };
  /** @type {{ toServer: { at: number; ms: number }[]; toClient: { at: number; ms: number }[] }} */
  const held = { toServer: [], toClient: [] };

  /**
   * @param {import('node:net').Socket} from
   * @param {import('node:net').Socket} to
   * @param {'toServer' | 'toClient'} which
   */
  const pipeWithDelay = (from, to, which) => {
    // Chunks leave in order, each no earlier than its arrival + delay, on a timer: a timer fires up to a
    // millisecond or so late, which `held` records. (Waiting out the last stretch with setImmediate was
    // exact to the microsecond but kept a core busy whenever a chunk was held, and on a loaded machine
    // that load itself slowed the code under test in the delayed stretches only.)
    /** @type {{ due: number; arrived: number; chunk: Buffer }[]} */
    const queue = [];
    let pumping = false;
    const pump = () => {
      const now = nowMs();
      while (queue.length > 0 && /** @type {{ due: number }} */ (queue[0]).due <= now) {
        const { chunk, arrived } = /** @type {{ arrived: number; chunk: Buffer }} */ (queue.shift());
        if (to.writable) to.write(chunk);
        const log = held[which];
        if (log.length < 1_000_000) log.push({ at: now, ms: now - arrived });
      }
      if (queue.length === 0) {
        pumping = false;
        return;
      }
      setTimeout(pump, Math.max(0, /** @type {{ due: number }} */ (queue[0]).due - now));
    };
    from.on('data', (/** @type {Buffer} */ chunk) => {
      const d = delays[which];
      if (d <= 0 && queue.length === 0) {
        to.write(chunk);
        return;
      }
      const arrived = nowMs();
      queue.push({ due: arrived + d, arrived, chunk });
      if (!pumping) {
        pumping = true;
        pump();
      }
    });
  };

  const onConnection = (/** @type {import('node:net').Socket} */ client) => {
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

  const server = createServer(onConnection);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(undefined));
  });
  listening = server;
  const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port;
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
      await new Promise((r) => (listening ? listening.close(() => r(undefined)) : r(undefined)));
    },
  };
}

// As a process of its own: `node tcp-proxy-core.mjs <host> <port>`, with an IPC channel. It sends
// { port } when listening, then answers { id, op: 'delay', which, ms } and { id, op: 'held' } with
// { id, ... }, and exits when its parent goes (the IPC channel closes).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [host = '127.0.0.1', port = '0'] = process.argv.slice(2);
  const proxy = await startTcpProxy({ host, port: Number(port) });
  process.on(
    'message',
    (/** @type {{ id: number; op: string; which?: 'toServer' | 'toClient'; ms?: number }} */ m) => {
      if (m.op === 'delay' && m.which) {
        proxy.delayMs[m.which] = Number(m.ms ?? 0);
        process.send?.({ id: m.id });
      } else if (m.op === 'held') {
        process.send?.({ id: m.id, held: proxy.held });
      }
    },
  );
  process.on('disconnect', () => void proxy.close().then(() => process.exit(0)));
  process.send?.({ port: proxy.port });
}
