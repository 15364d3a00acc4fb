import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { serveAgent, READ_TOKEN, WRITE_TOKEN, type ServedAgent } from '../../test/support/agent-server.js';
import { clientKey, connectionCap, readOpenFileLimit } from './connection-limits.js';

interface Raw {
  socket: Socket;
  /** Resolves with how long after it began connecting the server closed the connection (ms). */
  closed: Promise<number>;
  received: () => string;
}

/**
 * A raw TCP connection to the server, whose close is timed from when it began connecting: the server's
 * timers start at its accept, which comes after that and before the client hears of the connect (that
 * event can wait on a busy loop, the first connection's in particular), so the time measured is never
 * shorter than the server's.
 */
function raw(port: number, localAddress = '127.0.0.1'): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      const closed = new Promise<number>((r) => socket.once('close', () => r(performance.now() - t0)));
      resolve({ socket, closed, received: () => text });
    });
  });
}

const open: ServedAgent[] = [];
const sockets: Socket[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(open.splice(0).map((a) => a.close()));
  for (const s of servers.splice(0)) s.close();
});

async function agent(limits: Parameters<typeof serveAgent>[0]['limits'], config = 'targets: []') {
  const a = await serveAgent({ config, ...(limits ? { limits } : {}) });
  open.push(a);
  return a;
}

async function track(r: Promise<Raw>): Promise<Raw> {
  const c = await r;
  sockets.push(c.socket);
  return c;
}

/** One value of /metrics, read on a connection of its own (from 127.0.0.1) that closes after. */
async function metric(a: ServedAgent, line: string): Promise<number> {
  const c = await track(raw(a.port));
  c.socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await c.closed;
  const text = c.received();
  const m = new RegExp(`^${line.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`no ${line} in /metrics`);
  return Number(m[1]);
}

describe('timeouts of the agent HTTP server', () => {
  it('closes a connection that never sends a byte after the idle timeout, not the 30 s headers check', async () => {
    const a = await agent({ idleTimeoutMs: 300, headersTimeoutMs: 20_000, requestTimeoutMs: 20_000 });
    const c = await track(raw(a.port));
    const ms = await c.closed;
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(ms).toBeLessThan(5000);
    expect(c.received()).toBe('');
    expect(await metric(a, 'coalmine_http_connections_idle_closed_total')).toBe(1);
  });

  it('closes a connection that trickles its headers at the headers timeout, with 408', async () => {
    const a = await agent({ idleTimeoutMs: 10_000, headersTimeoutMs: 600, requestTimeoutMs: 10_000 });
    const c = await track(raw(a.port));
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    // A header line every 100 ms: never idle, never done.
    const drip = setInterval(() => c.socket.write('X-Slow: 1\r\n'), 100);
    try {
      const ms = await c.closed;
      expect(ms).toBeGreaterThanOrEqual(550);
      expect(ms).toBeLessThan(5000);
    } finally {
      clearInterval(drip);
    }
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes a connection that trickles its body at the request timeout', async () => {
    const a = await agent({ idleTimeoutMs: 10_000, headersTimeoutMs: 300, requestTimeoutMs: 800 });
    const c = await track(raw(a.port));
    c.socket.write(
      `POST /api/v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${WRITE_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`,
    );
    const drip = setInterval(() => c.socket.write(' '), 100);
    try {
      const ms = await c.closed;
      expect(ms).toBeGreaterThanOrEqual(750);
      expect(ms).toBeLessThan(6000);
    } finally {
      clearInterval(drip);
    }
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes an idle kept-alive connection after the keep-alive timeout, and serves it until then', async () => {
    const a = await agent({ idleTimeoutMs: 10_000, keepAliveTimeoutMs: 200 });
    const c = await track(raw(a.port));
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => c.received().includes('"status":"ok"') || c.received().includes('"status": "ok"'));
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => c.received().split('HTTP/1.1 200').length === 3);
    const ms = await c.closed;
    // Node adds a second to the keep-alive timeout for the socket, so a client's own timer fires first.
    expect(ms).toBeLessThan(5000);
  });

  it('keeps a connection whose request the server is still answering (a slow probe) past the idle timeout', async () => {
    const hung = createServer(() => {});
    servers.push(hung);
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    const port = (hung.address() as AddressInfo).port;
    hung.on('connection', (s) => sockets.push(s));
    const a = await agent(
      { idleTimeoutMs: 200 },
      `timeout: 900ms\ntargets:\n  - { name: slow, kind: tcp, target: "127.0.0.1:${port}", exchange: [{ expect: banner }] }`,
    );
    const t0 = performance.now();
    const res = await fetch(`${a.url}/check`, { method: 'POST' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { results: { ok: boolean; error: { code: string } }[] };
    expect(body.results[0]).toMatchObject({ ok: false, error: { code: 'timeout' } });
    expect(performance.now() - t0).toBeGreaterThan(800);
  });

  it('never cuts an event stream that waits between keepalives longer than every timeout', async () => {
    const a = await serveAgent({
      config: 'targets: []',
      limits: { idleTimeoutMs: 150, headersTimeoutMs: 150, requestTimeoutMs: 200, keepAliveTimeoutMs: 100 },
      api: { keepaliveMs: 60_000 },
    });
    open.push(a);
    const c = await track(raw(a.port));
    c.socket.write(`GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${READ_TOKEN}\r\n\r\n`);
    await until(() => c.received().includes('event: hello'));
    // Ten idle timeouts with nothing sent either way.
    await new Promise((r) => setTimeout(r, 1500));
    expect(c.socket.destroyed).toBe(false);
    a.ctx.events.emit({ event: 'alert', data: { rule: 'late', from: 'ok', to: 'firing', at: 1, value: 1 } });
    await until(() => c.received().includes('event: alert'));
  });
});

describe('connection caps of the agent HTTP server', () => {
  it('closes connections beyond the cap per client address at once, and counts them', async () => {
    const a = await agent({ maxConnectionsPerClient: 5, maxConnections: 100 });
    const conns = await Promise.all(Array.from({ length: 12 }, () => track(raw(a.port, '127.0.0.2'))));
    await closesOf(conns, 7);
    expect(conns.filter((c) => c.socket.destroyed)).toHaveLength(7);
    // Another address has a cap of its own: fetch connects from 127.0.0.1.
    expect(await metric(a, 'coalmine_http_connections_refused_total{reason="max_per_client"}')).toBe(7);
    expect(await metric(a, 'coalmine_http_connections')).toBe(5 + 1); // and the scrape's own
  });

  it('closes connections beyond the server-wide cap at once, and counts them', async () => {
    const a = await agent({ maxConnectionsPerClient: 1000, maxConnections: 20 });
    const conns = await Promise.all(
      Array.from({ length: 50 }, (_, i) => track(raw(a.port, `127.0.0.${2 + (i % 5)}`))),
    );
    await closesOf(conns, 30);
    expect(conns.filter((c) => c.socket.destroyed)).toHaveLength(30);
    // Freed slots are usable again.
    for (const c of conns) c.socket.destroy();
    await Promise.all(conns.map((c) => c.closed));
    expect(await metric(a, 'coalmine_http_connections_refused_total{reason="max_connections"}')).toBe(30);
    expect(await metric(a, 'coalmine_http_connections_max')).toBe(20);
  });
});

describe('connection limit helpers', () => {
  it('counts an IPv6 /64 as one client, and an IPv4-mapped address as the IPv4 one', () => {
    expect(clientKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2::9')).toBe(clientKey('2001:0db8:0001:0002:ffff::1'));
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(clientKey('10.1.2.3')).toBe('10.1.2.3');
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });

  it('keeps half the open-file limit for the rest of the agent', () => {
    expect(connectionCap(512, 20_000)).toBe(512);
    expect(connectionCap(512, 1024)).toBe(512);
    expect(connectionCap(512, 256)).toBe(128);
    expect(connectionCap(512, Infinity)).toBe(512);
    expect(connectionCap(512, undefined)).toBe(512);
    expect(readOpenFileLimit()).toBeGreaterThan(0);
    expect(readOpenFileLimit('/nonexistent')).toBeUndefined();
  });
});

/** Resolves when `n` of the connections have been closed by the server. */
function closesOf(conns: Raw[], n: number): Promise<void> {
  let closed = 0;
  return new Promise((resolve) => {
    for (const c of conns) void c.closed.then(() => ++closed === n && resolve());
  });
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
