import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { DecodedPacket, Packet, RecordType } from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { startDnsServer, type DnsServer, type DnsZone } from './dns-server.js';

const ZONE: DnsZone = {
  'example-corp.internal': {
    SOA: {
      mname: 'ns1.example-corp.internal',
      rname: 'hostmaster.example-corp.internal',
      serial: 2024010101,
    },
    NS: ['ns1.example-corp.internal'],
  },
  'example.example-corp.internal': {
    A: ['10.0.0.7', '10.0.0.8'],
    AAAA: ['fd00::7'],
    TXT: ['v=spf1 -all'],
    MX: [{ preference: 10, exchange: 'mail.example-corp.internal' }],
  },
  'www.example-corp.internal': { CNAME: 'example.example-corp.internal' },
  'big.example-corp.internal': { TXT: Array.from({ length: 10 }, (_, i) => `${i}`.repeat(100)) },
};

const servers: DnsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(opts: Partial<Parameters<typeof startDnsServer>[0]> = {}): Promise<DnsServer> {
  const s = await startDnsServer({ records: ZONE, ...opts });
  servers.push(s);
  return s;
}

function query(name: string, type: RecordType, id = 4242): Packet {
  return { type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type, class: 'IN' }] };
}

async function udp(server: DnsServer, packet: Packet | Buffer, ms = 1000): Promise<DecodedPacket> {
  const sock = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<DecodedPacket>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error('no UDP answer')), ms);
      sock.on('message', (msg) => resolve(dnsPacket.decode(msg)));
      sock.on('error', reject);
      sock.send(Buffer.isBuffer(packet) ? packet : dnsPacket.encode(packet), server.port, server.host);
    });
  } finally {
    clearTimeout(timer);
    sock.close();
  }
}

async function tcp(server: DnsServer, packet: Packet): Promise<DecodedPacket> {
  const sock = net.connect({ host: server.host, port: server.port });
  try {
    return await new Promise<DecodedPacket>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      sock.on('error', reject);
      sock.on('connect', () => sock.write(dnsPacket.streamEncode(packet)));
      sock.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length >= 2 && buf.length >= buf.readUInt16BE(0) + 2)
          resolve(dnsPacket.streamDecode(buf) as DecodedPacket);
      });
    });
  } finally {
    sock.destroy();
  }
}

const rcode = (p: DecodedPacket) => (p.flags ?? 0) & 0xf;
/** The data of each answer record (an OPT pseudo-record has none). */
const data = (p: DecodedPacket) => (p.answers ?? []).map((a) => ('data' in a ? a.data : undefined));

describe.each(['127.0.0.1', '::1'])('startDnsServer on %s', (host) => {
  it('answers A over UDP and TCP on the same port, authoritatively, echoing id and question', async () => {
    const s = await start({ host });
    expect(s.host).toBe(host);
    expect(s.port).toBeGreaterThan(0);
    for (const res of [
      await udp(s, query('Example.Example-Corp.Internal.', 'A')),
      await tcp(s, query('example.example-corp.internal', 'A')),
    ]) {
      expect(res.id).toBe(4242);
      expect(res.flag_qr).toBe(true);
      expect(res.flag_aa).toBe(true);
      expect(res.flag_rd).toBe(true);
      expect(rcode(res)).toBe(0);
      expect(res.questions?.[0]?.type).toBe('A');
      expect(data(res)).toEqual(['10.0.0.7', '10.0.0.8']);
    }
    expect(s.queries).toBe(2);
  });
});

describe('startDnsServer answers', () => {
  it('AAAA, TXT and MX records as configured', async () => {
    const s = await start();
    expect(data(await udp(s, query('example.example-corp.internal', 'AAAA')))).toEqual(['fd00::7']);
    const txt = await udp(s, query('example.example-corp.internal', 'TXT'));
    expect(data(txt)).toEqual([[Buffer.from('v=spf1 -all')]]);
    const mx = await udp(s, query('example.example-corp.internal', 'MX'));
    expect(data(mx)).toEqual([{ preference: 10, exchange: 'mail.example-corp.internal' }]);
  });

  it('NXDOMAIN with the zone SOA for an unknown name, NOERROR without answers for a missing type', async () => {
    const s = await start();
    const nx = await udp(s, query('nope.example-corp.internal', 'A'));
    expect(rcode(nx)).toBe(3);
    expect(nx.answers).toEqual([]);
    expect(nx.authorities?.[0]?.type).toBe('SOA');
    const empty = await udp(s, query('example-corp.internal', 'A'));
    expect(rcode(empty)).toBe(0);
    expect(empty.answers).toEqual([]);
    expect(empty.authorities?.[0]?.type).toBe('SOA');
  });

  it('follows a CNAME inside the zone', async () => {
    const s = await start();
    const res = await udp(s, query('www.example-corp.internal', 'A'));
    expect(res.answers?.map((a) => `${a.type} ${String('data' in a ? a.data : '')}`)).toEqual([
      'CNAME example.example-corp.internal',
      'A 10.0.0.7',
      'A 10.0.0.8',
    ]);
  });

  it('truncates a UDP answer above 512 bytes and sends it whole over TCP', async () => {
    const s = await start();
    const overUdp = await udp(s, query('big.example-corp.internal', 'TXT'));
    expect(overUdp.flag_tc).toBe(true);
    expect(overUdp.answers).toEqual([]);
    const overTcp = await tcp(s, query('big.example-corp.internal', 'TXT'));
    expect(overTcp.flag_tc).toBe(false);
    expect(overTcp.answers).toHaveLength(10);
  });

  it('with truncateUdp, sets TC on every UDP answer but not on TCP', async () => {
    const s = await start({ truncateUdp: true });
    expect((await udp(s, query('example.example-corp.internal', 'A'))).flag_tc).toBe(true);
    const full = await tcp(s, query('example.example-corp.internal', 'A'));
    expect(full.flag_tc).toBe(false);
    expect(full.answers).toHaveLength(2);
  });

  it('waits delayMs before answering', async () => {
    const s = await start({ delayMs: 80 });
    const t0 = performance.now();
    await udp(s, query('example.example-corp.internal', 'A'));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(79);
  });
});

describe('startDnsServer robustness', () => {
  it('ignores 1,000 random datagrams and garbage over TCP, then still answers', async () => {
    const s = await start();
    const sock = dgram.createSocket('udp4');
    // Replies to garbage that happens to decode as a query are fine; they are just not read.
    sock.on('message', () => {});
    // mulberry32: a seeded generator, so the same bytes are sent on every run.
    let seed = 0x9e3779b9;
    const rand = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return (t ^ (t >>> 14)) >>> 0;
    };
    const seen = () => s.garbage + s.queries;
    // Batches small enough for the socket buffer, so the kernel drops nothing and every datagram is judged.
    for (let sent = 0; sent < 1000;) {
      for (let i = 0; i < 50; i++, sent++) {
        const bytes = Buffer.alloc(rand() % 600);
        for (let j = 0; j < bytes.length; j++) bytes[j] = rand() & 0xff;
        sock.send(bytes, s.port, '127.0.0.1');
      }
      await expect.poll(seen, { timeout: 2000, interval: 5 }).toBe(sent);
    }
    sock.close();
    const junk = net.connect({ host: '127.0.0.1', port: s.port });
    junk.on('error', () => {});
    await new Promise((r) => junk.on('connect', r));
    junk.write(Buffer.from([0x00, 0x03, 1, 2, 3, 0xff, 0xff]));
    await new Promise((r) => junk.on('close', r));

    const res = await udp(s, query('example.example-corp.internal', 'A'));
    expect(res.answers).toHaveLength(2);
    expect(s.garbage).toBeGreaterThan(990);
    // 1,000 datagrams, one TCP message with a length too short for a header, one real query.
    expect(s.garbage + s.queries).toBe(1002);
  });

  it('never answers a response packet (no loops between servers)', async () => {
    const s = await start();
    const response: Packet = { ...query('example.example-corp.internal', 'A'), type: 'response' };
    await expect(udp(s, response, 200)).rejects.toThrow('no UDP answer');
    expect(s.garbage).toBe(1);
  });

  it('close() is idempotent and frees the port for UDP and TCP', async () => {
    const s = await start();
    await Promise.all([s.close(), s.close()]);
    await s.close();
    const again = await start({ port: s.port });
    expect(again.port).toBe(s.port);
    expect((await tcp(again, query('example.example-corp.internal', 'A'))).answers).toHaveLength(2);
  });

  it('close() drops pending delayed answers and open TCP connections', async () => {
    const s = await start({ delayMs: 5_000 });
    const sock = net.connect({ host: '127.0.0.1', port: s.port });
    await new Promise((r) => sock.on('connect', r));
    sock.write(dnsPacket.streamEncode(query('example.example-corp.internal', 'A')));
    const closed = new Promise((r) => sock.on('close', r));
    await new Promise((r) => setTimeout(r, 20));
    const t0 = performance.now();
    await s.close();
    await closed;
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
