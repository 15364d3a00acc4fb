import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

// The client of issue 9, item 6: connections that never send a byte. It runs in a process of its own so
// that its descriptors do not count against the server's open-file limit.
const SCRIPT = `
const net = require('node:net');
const [port, n, addresses] = [Number(process.argv[1]), Number(process.argv[2]), process.argv[3].split(',')];
let connected = 0, closed = 0, failed = 0, settled = 0;
const settle = () => { if (++settled === n) report('ready'); };
function report(what) { console.log(JSON.stringify({ what, connected, closed, failed, open: connected - closed })); }
for (let i = 0; i < n; i++) {
  const s = net.connect({ port, host: '127.0.0.1', localAddress: addresses[i % addresses.length] });
  let done = false, was = false;
  const once = () => { if (!done) { done = true; settle(); } };
  s.on('connect', () => { was = true; connected++; setTimeout(once, 300); });
  s.on('error', () => {});
  s.on('close', () => { if (was) closed++; else failed++; once(); });
}
process.stdin.on('data', () => report('now'));
process.stdin.on('end', () => process.exit(0));
`;

export interface FloodCounts {
  /** Connections the server accepted. */
  connected: number;
  /** Of those, closed by the server. */
  closed: number;
  /** Never connected. */
  failed: number;
  /** Held open now. */
  open: number;
}

export interface IdleFlood {
  /** The counts once every connection is open or was closed (300 ms after its connect). */
  ready: FloodCounts;
  counts(): Promise<FloodCounts>;
  /** Ends the process and with it its connections. Idempotent. */
  close(): Promise<void>;
}

/** Opens `n` connections to 127.0.0.1:port from the given local addresses, in turn, and sends nothing. */
export async function holdIdleConnections(port: number, n: number, addresses: string[]): Promise<IdleFlood> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['-e', SCRIPT, String(port), String(n), addresses.join(',')],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<FloodCounts> => {
    const line = await lines.next();
    if (line.done) throw new Error('the idle-connection process ended early');
    return JSON.parse(line.value as string) as FloodCounts;
  };
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let closing: Promise<void> | undefined;
  return {
    ready: await next(),
    counts: () => {
      child.stdin!.write('\n');
      return next();
    },
    close: () =>
      (closing ??= (async () => {
        child.stdin!.end();
        await exited;
      })()),
  };
}
