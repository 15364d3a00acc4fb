import { setMaxListeners } from 'node:events';
import { connect, createServer, Socket, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveNativeAddon } from '../../test/support/require.js';
import { loadIcmpAddon } from './icmp/native.js';
import { readdirSync } from 'node:fs';
import { systemClock } from '../core/clock.js';
import { connectOnly, kernelConnectNs, kernelTcpInfo, socketFd } from './kernel-tcp.js';

// Where the addon is built (Linux with a compiler), kernel timing must work; elsewhere everything
// must say "unavailable" rather than throw, so the probes fall back to user-space timing.
const haveAddon = haveNativeAddon(
  (() => {
    const load = loadIcmpAddon();
    return load.ok && typeof load.addon.tcpInfo === 'function';
  })(),
  'kernel TCP timing',
);

function connected(port: number): Promise<{ socket: Socket; userNs: bigint }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const socket = connect({ host: '127.0.0.1', port }, () =>
      resolve({ socket, userNs: process.hrtime.bigint() - t0 }),
    );
    socket.once('error', reject);
  });
}

describe('kernel TCP timing', () => {
  const server: Server = createServer((s) => s.resume());
  let port: number;
  beforeAll(
    () =>
      new Promise<void>((r) =>
        server.listen(0, '127.0.0.1', () => {
          port = (server.address() as AddressInfo).port;
          r();
        }),
      ),
  );
  afterAll(() => void server.close());

  it('reads the handshake RTT, which lies inside the user-space connect interval', async () => {
    // Warm the path first, so the user-space interval is tight and the comparison means something.
    for (let i = 0; i < 3; i++) (await connected(port)).socket.destroy();
    const { socket, userNs } = await connected(port);
    try {
      const info = kernelTcpInfo(socket);
      const ns = kernelConnectNs(socket);
      if (!haveAddon) {
        expect(info).toBeUndefined();
        expect(ns).toBeUndefined();
        return;
      }
      expect(info).toBeDefined();
      expect(info!.state).toBe(1); // ESTABLISHED
      expect(info!.totalRetrans).toBe(0);
      expect(info!.rttUs).toBeGreaterThan(0);
      // One sample so far, so the kernel's minimum is that sample (kernels >= 4.10 report it).
      if (info!.minRttUs !== undefined) expect(info!.minRttUs).toBe(info!.rttUs);
      expect(ns).toBe(BigInt(info!.rttUs) * 1000n);
      // The kernel's SYN -> SYN/ACK happens between our connect() call and our seeing 'connect'.
      expect(ns! <= userNs).toBe(true);
    } finally {
      socket.destroy();
    }
  });

  it('says nothing, rather than throwing, for a socket without a descriptor', async () => {
    const { socket } = await connected(port);
    if (haveAddon) expect(socketFd(socket)).toBeGreaterThanOrEqual(0);
    socket.destroy();
    expect(socketFd(socket)).toBeUndefined();
    expect(kernelTcpInfo(socket)).toBeUndefined();
    expect(kernelConnectNs(new Socket())).toBeUndefined();
  });

  const openFds = () => readdirSync('/proc/self/fd').length;

  it('connects and closes without a JavaScript socket, timed by the kernel', async () => {
    const never = new AbortController().signal;
    // 101 connects share this one signal here (each probe has its own in the agent): not a leak.
    setMaxListeners(128, never);
    const fds = openFds();
    const pending = connectOnly(4, '127.0.0.1', port, systemClock, never);
    if (!haveAddon) return expect(pending).toBeUndefined();
    // More at once than the addon's first slot table holds, so it has to grow.
    const results = await Promise.all(
      Array.from({ length: 100 }, () => connectOnly(4, '127.0.0.1', port, systemClock, never)!),
    );
    expect(await pending).toMatchObject({ timing: 'kernel' });
    for (const r of results) {
      expect(r.timing).toBe('kernel');
      expect(r.connectNs).toBeGreaterThan(0n);
    }
    expect(openFds()).toBe(fds);
  });

  it('reports a refused port with its errno name, and an abort with the signal reason', async () => {
    if (!haveAddon) return;
    const closed = createServer();
    const closedPort = await new Promise<number>((r) =>
      closed.listen(0, '127.0.0.1', () => r((closed.address() as AddressInfo).port)),
    );
    await new Promise((r) => closed.close(r));
    const never = new AbortController().signal;
    await expect(connectOnly(4, '127.0.0.1', closedPort, systemClock, never)).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });

    const fds = openFds();
    const ac = new AbortController();
    const reason = new Error('stop');
    const aborted = connectOnly(4, '127.0.0.1', port, systemClock, ac.signal)!;
    ac.abort(reason); // before the event loop reports the connect: the socket is closed unreported
    await expect(aborted).rejects.toBe(reason);
    expect(openFds()).toBe(fds);
    await expect(connectOnly(4, '127.0.0.1', port, systemClock, ac.signal)).rejects.toBe(reason);
    // The slot is free again and works.
    await expect(connectOnly(6, '::1', port, systemClock, never)).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    expect((await connectOnly(4, '127.0.0.1', port, systemClock, never))!.timing).toBe('kernel');
  });
});
