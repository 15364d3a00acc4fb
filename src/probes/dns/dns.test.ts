import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NS_PER_MS, systemClock } from '../../core/clock.js';
import type { ProbeContext, ProbeResult } from '../../core/types.js';
import { startDnsServer, type DnsServer, type DnsZone } from '../../target/dns-server.js';
import dns from './index.js';

const NAME = 'example.example-corp.internal';
const ZONE: DnsZone = {
  'example-corp.internal': {
    SOA: {
      mname: 'ns1.example-corp.internal',
      rname: 'hostmaster.example-corp.internal',
      serial: 2024010101,
    },
  },
  [NAME]: { A: ['10.0.0.7'], AAAA: ['fd00::7'], TXT: ['canary=alive'] },
};

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(opts: Partial<Parameters<typeof startDnsServer>[0]> = {}): Promise<DnsServer> {
  const s = await startDnsServer({ records: ZONE, ...opts });
  cleanups.push(() => s.close());
  return s;
}

function ctx(timeoutMs = 1000): ProbeContext {
  return { signal: AbortSignal.timeout(timeoutMs), clock: systemClock, timeoutMs };
}

const at = (host: string, port: number) => (net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`);

function run(target: string, options: Record<string, unknown>, c = ctx()): Promise<ProbeResult> {
  return dns.run(target, dns.options.parse(options), c);
}

function failure(r: ProbeResult) {
  if (r.ok) throw new Error(`expected a failure, got success: ${JSON.stringify(r.detail)}`);
  return r.error;
}

describe.each(['127.0.0.1', '::1'])('dns probe against a server on %s', (host) => {
  it('answers A with phases, counts and the answer text', async () => {
    const s = await server({ host });
    const r = await run(NAME, { server: at(host, s.port) });
    expect(r.ok).toBe(true);
    expect(r.phases.resolve).toBe(0n); // an IP literal needs no resolving
    expect(r.phases.request).toBeGreaterThan(0n);
    expect(r.phases.connect).toBeUndefined(); // UDP has no handshake
    expect(r.durationNs).toBeGreaterThanOrEqual(r.phases.request!);
    expect(r.values?.dns_lookup_time_seconds).toBe(0); // blackbox's meaning: resolving the server's name
    expect(r.values).toMatchObject({
      dns_rcode: 0,
      dns_answer_rrs: 1,
      dns_authority_rrs: 0,
      dns_additional_rrs: 0,
    });
    expect(r.detail).toMatchObject({
      rcode: 'NOERROR',
      server: at(host, s.port),
      answers: [`${NAME}.\t60\tIN\tA\t10.0.0.7`],
    });
  });

  it('queries AAAA and TXT', async () => {
    const s = await server({ host });
    const aaaa = await run(NAME, { server: at(host, s.port), recordType: 'AAAA' });
    expect(aaaa.detail?.answers).toEqual([`${NAME}.\t60\tIN\tAAAA\tfd00::7`]);
    const txt = await run(NAME, { server: at(host, s.port), recordType: 'TXT' });
    expect(txt.detail?.answers).toEqual([`${NAME}.\t60\tIN\tTXT\t"canary=alive"`]);
  });

  it('queries over TCP and reports the connect phase', async () => {
    const s = await server({ host });
    const r = await run(NAME, { server: at(host, s.port), transport: 'tcp' });
    expect(r.ok).toBe(true);
    expect(r.phases.connect).toBeGreaterThan(0n);
    expect(r.phases.request).toBeGreaterThan(0n);
    expect(r.detail).toMatchObject({ transport: 'tcp', answers: [`${NAME}.\t60\tIN\tA\t10.0.0.7`] });
  });

  it('retries over TCP when the UDP answer is truncated, and says so', async () => {
    const s = await server({ host, truncateUdp: true });
    const r = await run(NAME, { server: at(host, s.port) });
    expect(r.ok).toBe(true);
    expect(r.detail).toMatchObject({ fallback: 'tcp', answers: [`${NAME}.\t60\tIN\tA\t10.0.0.7`] });
    expect(r.values?.dns_tcp_fallback).toBe(1);
    expect(r.phases.connect).toBeGreaterThan(0n);
    expect(s.queries).toBe(2); // one over UDP, one over TCP
  });
});

describe('dns probe response checks', () => {
  it('fails with a dns error naming the rcode for NXDOMAIN', async () => {
    const s = await server();
    const r = await run('missing.example-corp.internal', { server: at('127.0.0.1', s.port) });
    expect(failure(r)).toEqual({ code: 'dns', message: 'got NXDOMAIN, expected NOERROR', cause: 'NXDOMAIN' });
    expect(r.values).toMatchObject({ dns_rcode: 3, dns_answer_rrs: 0, dns_authority_rrs: 1 });
    expect(r.detail?.rcode).toBe('NXDOMAIN');
  });

  it('passes NXDOMAIN when validRcodes allows it', async () => {
    const s = await server();
    const r = await run('missing.example-corp.internal', {
      server: at('127.0.0.1', s.port),
      validRcodes: ['NXDOMAIN'],
    });
    expect(r.ok).toBe(true);
    expect(r.values?.dns_rcode).toBe(3);
  });

  it('validates answers against regular expressions', async () => {
    const s = await server();
    const server_ = at('127.0.0.1', s.port);
    const pass = await run(NAME, {
      server: server_,
      validateAnswer: {
        failIfNotMatchesRegexp: ['\\tIN\\tA\\t10\\.0\\.0\\.\\d+$'],
        failIfNoneMatchesRegexp: ['10\\.0\\.0\\.7'],
      },
    });
    expect(pass.ok).toBe(true);

    const hit = await run(NAME, {
      server: server_,
      validateAnswer: { failIfMatchesRegexp: ['10\\.0\\.0\\.7'] },
    });
    expect(failure(hit).code).toBe('validation');
    expect(failure(hit).message).toContain('failIfMatchesRegexp');

    const none = await run(NAME, {
      server: server_,
      validateAnswer: { failIfNoneMatchesRegexp: ['192\\.0\\.2\\.'] },
    });
    expect(failure(none).code).toBe('validation');

    const all = await run(NAME, {
      server: server_,
      validateAnswer: { failIfAllMatchRegexp: ['^example\\.'] },
    });
    expect(failure(all).code).toBe('validation');
  });

  it('fails an empty answer only when failIfNoAnswer is set', async () => {
    const s = await server();
    const server_ = at('127.0.0.1', s.port);
    expect((await run(NAME, { server: server_, recordType: 'MX' })).ok).toBe(true);
    const r = await run(NAME, { server: server_, recordType: 'MX', failIfNoAnswer: true });
    expect(failure(r).code).toBe('validation');
  });
});

describe('dns probe timing and failures', () => {
  it('puts a slow server’s delay in the request phase', async () => {
    const s = await server({ delayMs: 50 });
    const r = await run(NAME, { server: at('127.0.0.1', s.port) });
    expect(r.ok).toBe(true);
    // Node's timers count from the loop's cached time, so a 50 ms delay can end a few µs short of
    // 50 ms on the monotonic clock: allow 1 ms below.
    expect(r.phases.request).toBeGreaterThanOrEqual(49n * NS_PER_MS);
    expect(r.phases.request).toBeLessThan(70n * NS_PER_MS);
  });

  it('reports refused when nothing listens on the UDP port (ICMP port unreachable)', async () => {
    const probeSock = dgram.createSocket('udp4');
    const port = await new Promise<number>((r) =>
      probeSock.bind(0, '127.0.0.1', () => r(probeSock.address().port)),
    );
    await new Promise<void>((r) => probeSock.close(() => r()));
    const t0 = performance.now();
    const r = await run(NAME, { server: at('127.0.0.1', port) }, ctx(2000));
    expect(failure(r)).toMatchObject({ code: 'refused', cause: 'ECONNREFUSED' });
    expect(performance.now() - t0).toBeLessThan(500); // told by the kernel, not by the timeout
  });

  it('times out against a UDP server that never answers, within timeout + 100 ms', async () => {
    const silent = dgram.createSocket('udp4');
    let received = 0;
    silent.on('message', () => received++);
    const port = await new Promise<number>((r) =>
      silent.bind(0, '127.0.0.1', () => r(silent.address().port)),
    );
    cleanups.push(() => new Promise<void>((r) => silent.close(() => r())));
    const t0 = performance.now();
    const r = await run(NAME, { server: at('127.0.0.1', port) }, ctx(300));
    const took = performance.now() - t0;
    expect(failure(r)).toEqual({ code: 'timeout', message: 'timed out after 300 ms' });
    expect(received).toBe(1);
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(400);
    expect(r.phases?.request).toBeGreaterThanOrEqual(250n * NS_PER_MS);
  });

  it('times out against a TCP server that accepts but never answers, and closes its connection', async () => {
    const sockets = new Set<net.Socket>();
    const closed: Promise<void>[] = [];
    const tcp = net.createServer((sock) => {
      sockets.add(sock);
      sock.resume(); // read (and drop) the query, so the probe's hang-up is seen
      closed.push(new Promise((r) => sock.on('close', () => r())));
    });
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => tcp.close(() => r())));
    const port = (tcp.address() as net.AddressInfo).port;
    const t0 = performance.now();
    const r = await run(NAME, { server: at('127.0.0.1', port), transport: 'tcp' }, ctx(300));
    expect(failure(r).code).toBe('timeout');
    expect(performance.now() - t0).toBeLessThan(400);
    expect(r.phases?.connect).toBeGreaterThan(0n);
    await Promise.all(closed); // the probe hung up
    expect(sockets.size).toBe(1);
  });

  it('ignores an answer with the wrong id and keeps waiting for the right one', async () => {
    const sock = dgram.createSocket('udp4');
    const port = await new Promise<number>((r) => sock.bind(0, '127.0.0.1', () => r(sock.address().port)));
    cleanups.push(() => new Promise<void>((r) => sock.close(() => r())));
    const real = await server();
    // A man in the middle: first a forged answer with another id, then the real server's answer.
    sock.on('message', (msg, from) => {
      const forged = Buffer.from(msg);
      forged.writeUInt16BE((msg.readUInt16BE(0) + 1) & 0xffff, 0);
      forged[2] = forged[2]! | 0x80;
      sock.send(forged, from.port, from.address);
      const relay = dgram.createSocket('udp4');
      relay.on('message', (answer) => {
        sock.send(answer, from.port, from.address);
        relay.close();
      });
      relay.send(msg, real.port, '127.0.0.1');
    });
    const r = await run(NAME, { server: at('127.0.0.1', port) });
    expect(r.ok).toBe(true);
    expect(r.detail?.answers).toEqual([`${NAME}.\t60\tIN\tA\t10.0.0.7`]);
  });

  it('reports protocol when the server answers our id with bytes that do not decode', async () => {
    const sock = dgram.createSocket('udp4');
    const port = await new Promise<number>((r) => sock.bind(0, '127.0.0.1', () => r(sock.address().port)));
    cleanups.push(() => new Promise<void>((r) => sock.close(() => r())));
    sock.on('message', (msg, from) => {
      const bad = Buffer.concat([
        msg.subarray(0, 2),
        Buffer.from([0x84, 0x00, 0x00, 0x01, 0x00, 0x05]),
        Buffer.alloc(8, 0xff),
      ]);
      sock.send(bad, from.port, from.address);
    });
    const r = await run(NAME, { server: at('127.0.0.1', port) });
    expect(failure(r).code).toBe('protocol');
  });
});

describe('dns probe with the system resolver', () => {
  it('resolves localhost, timing the whole lookup as the resolve phase', async () => {
    const r = await run('localhost', {});
    expect(r.ok).toBe(true);
    expect(r.phases.resolve).toBe(r.durationNs);
    expect(r.phases.request).toBeUndefined();
    expect(r.detail).toMatchObject({ resolver: 'system', rcode: 'NOERROR' });
    expect(r.detail?.answers).toContain('localhost.\t0\tIN\tA\t127.0.0.1');
    expect(r.detail?.note).toMatch(/only the total time/);
  });
});

describe('dns probe configuration', () => {
  it('accepts DNS names and IPs as targets and explains bad ones', () => {
    expect(dns.validateTarget(NAME)).toBeUndefined();
    expect(dns.validateTarget('_sip._tcp.example.com.')).toBeUndefined();
    expect(dns.validateTarget('192.0.2.1')).toBeUndefined();
    expect(dns.validateTarget('two words')).toMatch(/is not a DNS name such as example\.com/);
    expect(dns.validateTarget('a..b')).toMatch(/is not a DNS name/);
    expect(dns.validateTarget(`${'x'.repeat(64)}.com`)).toMatch(/is not a DNS name/);
  });

  it('rejects unusable options when the config loads', () => {
    expect(dns.options.safeParse({ server: 'host:99999' }).success).toBe(false);
    expect(dns.options.safeParse({ recordType: 'BOGUS' }).success).toBe(false);
    expect(dns.options.safeParse({ validRcodes: ['NOPE'] }).success).toBe(false);
    expect(dns.options.safeParse({ validateAnswer: { failIfMatchesRegexp: ['('] } }).success).toBe(false);
    expect(dns.options.safeParse({ validateAuthority: {} }).success).toBe(false); // needs a server
    expect(dns.options.safeParse({ serverr: '127.0.0.1' }).success).toBe(false); // strict: typos are errors
    expect(dns.options.parse({})).toMatchObject({
      transport: 'udp',
      recordType: 'A',
      validRcodes: ['NOERROR'],
    });
  });

  it('queries the reverse name for a PTR target given as an IP', async () => {
    const s = await startDnsServer({ records: { '7.0.0.10.in-addr.arpa': { PTR: [NAME] } } });
    cleanups.push(() => s.close());
    const r = await run('10.0.0.7', { server: at('127.0.0.1', s.port), recordType: 'PTR' });
    expect(r.detail?.answers).toEqual([`7.0.0.10.in-addr.arpa.\t60\tIN\tPTR\t${NAME}.`]);
  });
});
