import { connect as netConnect } from 'node:net';

/**
 * What a server said first: `info` (a NATS INFO line), `other` (something else: nats.js refuses that and
 * closes its socket), `silent` (nothing within the time), `unreachable` (refused, reset, no route).
 */
export type InfoProbeResult = 'info' | 'other' | 'silent' | 'unreachable';

/**
 * Opens a TCP connection to `hostPort` and waits up to `timeoutMs` for the server's first line, then
 * closes it. nats.js 2.29 never closes a socket that timed out waiting for INFO (its transport only
 * closes sockets that connected), so a port that accepts TCP but never speaks NATS would keep the
 * process alive forever; asking first keeps such servers away from it.
 */
export function probeInfo(
  hostPort: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<InfoProbeResult> {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(hostPort);
  const host = m?.[1] ?? hostPort;
  const port = Number(m?.[2] ?? 4222);
  return new Promise((resolve) => {
    let seen = '';
    let finished = false;
    const socket = netConnect({ host, port });
    const done = (result: InfoProbeResult) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(result);
    };
    const onAbort = () => done('silent');
    const timer = setTimeout(() => done('silent'), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      if (seen.length >= 5) done(seen.startsWith('INFO ') || seen.startsWith('INFO\t') ? 'info' : 'other');
    });
    socket.on('error', () => done('unreachable'));
    socket.on('close', () => done(seen ? 'other' : 'unreachable'));
  });
}
