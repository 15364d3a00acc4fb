import { mkdtempSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../core/clock.js';
import { loadIcmpAddon } from '../icmp/native.js';
import { runProbe } from '../run.js';
import tcp from './index.js';
import { selfSignedCert } from '../../../test/support/certs.js';

const opts = (o: Record<string, unknown> = {}) => tcp.options.parse(o) as Record<string, unknown>;
const probe = (target: string, o: Record<string, unknown> = {}, timeoutMs = 2000) =>
  runProbe('tcp', target, opts(o), { clock: systemClock, timeoutMs });

function listen(server: Server, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, host, () => resolve((server.address() as AddressInfo).port)),
  );
}

describe('tcp probe', () => {
  const sockets = new Set<Socket>();
  const track = (s: Socket) => (sockets.add(s), s.on('close', () => sockets.delete(s)));
  const echo = createServer((s) => {
    track(s);
    s.on('data', (d) => s.write(`echo:${d.toString()}`));
  });
  const greeter = createServer((s) => {
    track(s);
    s.write('SSH-2.0-test\r\n');
  });
  const silent = createServer((s) => void track(s));
  const echo6 = createServer((s) => void track(s).end());
  let dir: string;
  let tlsServer: Server;
  let echoPort: number, greeterPort: number, silentPort: number, echo6Port: number, tlsPort: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'coalmine-tcp-'));
    const cert = selfSignedCert(dir, 'server', { days: 3 });
    tlsServer = createTlsServer({ key: cert.key, cert: cert.cert }, (s) => s.end('hello over tls\n'));
    [echoPort, greeterPort, silentPort, echo6Port, tlsPort] = await Promise.all([
      listen(echo),
      listen(greeter),
      listen(silent),
      listen(echo6, '::1'),
      listen(tlsServer),
    ]);
  });
  afterAll(() => {
    for (const s of sockets) s.destroy();
    for (const s of [echo, greeter, silent, echo6, tlsServer]) s.close();
  });

  it('measures connect time to a listening port', async () => {
    const r = await probe(`127.0.0.1:${echoPort}`);
    expect(r.ok).toBe(true);
    expect(r.phases.connect).toBeGreaterThan(0n);
    expect(r.phases.connect! <= r.durationNs).toBe(true);
    expect(r.values?.ip_protocol).toBe(4);
  });

  it('times connect in the kernel where it can, and its network time is exactly its phases', async () => {
    const load = loadIcmpAddon();
    const kernel = load.ok && typeof load.addon.tcpInfo === 'function';
    const before = process.hrtime.bigint();
    const r = await probe(`127.0.0.1:${echoPort}`, { exchange: [{ send: 'x\n', expect: 'echo:x' }] });
    const wall = process.hrtime.bigint() - before;
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.detail?.timing).toBe(kernel ? 'kernel' : 'user');
    const { resolve = 0n, connect = 0n, exchange = 0n } = r.phases;
    expect(r.networkNs).toBe(resolve + connect + exchange);
    // The network time leaves our own overhead out; the duration is the run's wall time, overhead included.
    expect(r.networkNs! < r.durationNs && r.durationNs <= wall).toBe(true);
    expect(connect).toBeGreaterThan(0n);
  });

  it('connects over IPv6 and resolves localhost', async () => {
    const r = await probe(`[::1]:${echo6Port}`);
    expect(r).toMatchObject({ ok: true, values: { ip_protocol: 6 } });
    const named = await probe(`localhost:${echoPort}`, { ipProtocol: 'ip4' });
    expect(named.ok).toBe(true);
    expect(named.phases.resolve).toBeDefined();
  });

  it('reports a refused port as refused', async () => {
    const closed = createServer();
    const port = await listen(closed);
    await new Promise((r) => closed.close(r));
    const r = await probe(`127.0.0.1:${port}`);
    expect(r).toMatchObject({ ok: false, error: { code: 'refused', cause: 'ECONNREFUSED' } });
  });

  it('runs a send/expect exchange', async () => {
    const ok = await probe(`127.0.0.1:${echoPort}`, { exchange: [{ send: 'PING\n', expect: '^echo:PING' }] });
    expect(ok.ok).toBe(true);
    expect(ok.phases.exchange).toBeGreaterThan(0n);
    const banner = await probe(`127.0.0.1:${greeterPort}`, { exchange: [{ expect: '^SSH-2\\.0-' }] });
    expect(banner.ok).toBe(true);
  });

  it('fails an exchange whose expectation is never met, at the timeout', async () => {
    const start = Date.now();
    const r = await probe(`127.0.0.1:${silentPort}`, { exchange: [{ send: 'x', expect: 'never' }] }, 300);
    expect(r).toMatchObject({ ok: false, error: { code: 'timeout' } });
    expect(Date.now() - start).toBeLessThan(450);
  });

  it('fails an exchange whose regex backtracks on what the peer sent, after the regex time limit', async () => {
    // 64 KiB of one line: `.*never.*` would take seconds on it, for each chunk received.
    const flood = createServer((s) => {
      track(s).on('error', () => {});
      s.write(`${'a'.repeat(65_536)}\n`);
    });
    const port = await listen(flood);
    try {
      const start = Date.now();
      const r = await probe(`127.0.0.1:${port}`, { exchange: [{ expect: '.*never.*' }] });
      expect(r).toMatchObject({ ok: false, error: { code: 'expect' } });
      expect(r.ok || r.error.message).toMatch(/took over 50 ms/);
      expect(Date.now() - start).toBeLessThan(1500);
    } finally {
      flood.close();
    }
  });

  it('fails an exchange when the peer closes before the expected data', async () => {
    const r = await probe(`[::1]:${echo6Port}`, { exchange: [{ expect: 'banner' }] });
    expect(r).toMatchObject({ ok: false, error: { code: 'expect' } });
  });

  describe('expect, line by line as blackbox_exporter', () => {
    const banner = createServer((s) => void track(s).end('220 hello\r\nSSH-2.0-OpenSSH_9\r\n'));
    const partial = createServer((s) => void track(s).write('SSH-2.0-'));
    let bannerPort: number, partialPort: number;
    beforeAll(async () => ([bannerPort, partialPort] = await Promise.all([listen(banner), listen(partial)])));
    afterAll(() => void [banner, partial].forEach((s) => s.close()));

    it('anchors ^ and $ at each line, not at the start and end of all the data', async () => {
      const r = await probe(`127.0.0.1:${bannerPort}`, { exchange: [{ expect: '^SSH-2\\.0-OpenSSH_9$' }] });
      expect(r.ok || r.error.message).toBe(true);
    });

    it('starts the next expect after the line that matched, so a consumed line does not match again', async () => {
      const twice = await probe(`127.0.0.1:${bannerPort}`, {
        exchange: [{ expect: '^220 ' }, { expect: '^SSH-2\\.0-' }],
      });
      expect(twice.ok || twice.error.message).toBe(true);
      const again = await probe(`127.0.0.1:${bannerPort}`, {
        exchange: [{ expect: 'SSH' }, { expect: '^220' }],
      });
      expect(again).toMatchObject({ ok: false, error: { code: 'expect' } });
      expect(again.ok || again.error.message).toMatch(/before another line arrived/);
    });

    it('says that data arrived and did not match, quoting the start of it', async () => {
      const r = await probe(`127.0.0.1:${bannerPort}`, { exchange: [{ expect: '^SMTP' }] });
      expect(r).toMatchObject({ ok: false, error: { code: 'expect' } });
      if (r.ok) return;
      expect(r.error.message).toMatch(/none of the 2 lines received matched before the connection closed/);
      expect(r.error.message).toContain('"220 hello\\nSSH-2.0-OpenSSH_9\\n"');
      expect(r.error.message).not.toMatch(/before the expected data arrived/);
    });

    it('quotes at most 200 characters of a long unmatched reply', async () => {
      const long = createServer((s) => void track(s).end(`${'x'.repeat(10_000)}\n`));
      const port = await listen(long);
      try {
        const r = await probe(`127.0.0.1:${port}`, { exchange: [{ expect: '^y' }] });
        expect(r.ok || r.error.message.length).toBeLessThan(400);
        expect(r.ok || r.error.message).toMatch(/the line received did not match .*"x{200}…"/);
      } finally {
        long.close();
      }
    });

    it('does not try a line before its end arrives, as blackbox does not', async () => {
      const r = await probe(`127.0.0.1:${partialPort}`, { exchange: [{ expect: '^SSH-2\\.0-$' }] }, 300);
      expect(r).toMatchObject({ ok: false, error: { code: 'timeout' } });
    });
  });

  it('refuses an expect that is not a regular expression, naming what is wrong', () => {
    const r = tcp.options.safeParse({ exchange: [{ expect: '(' }] });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toBe(
      'not a valid JavaScript regular expression (Unterminated group)',
    );
  });

  it('does TLS: rejects an untrusted certificate, accepts it with its CA, reports its expiry', async () => {
    const bad = await probe(`127.0.0.1:${tlsPort}`, { tls: true });
    expect(bad).toMatchObject({ ok: false, error: { code: 'tls' } });
    const good = await probe(`localhost:${tlsPort}`, {
      tls: { caFile: join(dir, 'server.crt') },
      ipProtocol: 'ip4',
    });
    expect(good.ok).toBe(true);
    expect(good.phases.tls).toBeGreaterThan(0n);
    const expiry = good.values!.ssl_earliest_cert_expiry!;
    expect(Math.abs(expiry - (Date.now() / 1000 + 3 * 86400))).toBeLessThan(3600);
    const skip = await probe(`127.0.0.1:${tlsPort}`, { tls: { insecureSkipVerify: true } });
    expect(skip.ok).toBe(true);
  });

  it('validates targets', () => {
    expect(tcp.validateTarget('127.0.0.1:80')).toBeUndefined();
    expect(tcp.validateTarget('[::1]:443')).toBeUndefined();
    expect(tcp.validateTarget('host')).toMatch(/host:port/);
    expect(tcp.validateTarget('host:70000')).toMatch(/1-65535/);
  });
});
