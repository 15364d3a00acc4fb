import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet';

/** The records one name owns. Every list holds one resource record per element. */
export interface DnsZoneRecords {
  A?: string[];
  AAAA?: string[];
  /** One TXT record per string; strings longer than 255 bytes are split into character-strings. */
  TXT?: string[];
  /** A name that owns a CNAME owns nothing else (RFC 1034 3.6.2). */
  CNAME?: string;
  MX?: { preference: number; exchange: string }[];
  NS?: string[];
  PTR?: string[];
  SRV?: { priority: number; weight: number; port: number; target: string }[];
  SOA?: {
    mname: string;
    rname: string;
    serial?: number;
    refresh?: number;
    retry?: number;
    expire?: number;
    minimum?: number;
  };
  CAA?: { flags?: number; tag: 'issue' | 'issuewild' | 'iodef'; value: string }[];
}

export type DnsZone = Record<string, DnsZoneRecords>;

export interface DnsServerOptions {
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** UDP and TCP port; 0 picks a free one (the same number for both). */
  port?: number;
  /** Names (case-insensitive, trailing dot optional) and the records they own. */
  records: DnsZone;
  /** TTL of every record served; default 60 seconds. */
  ttl?: number;
  /** Wait this long before answering each query, to simulate a slow server. */
  delayMs?: number;
  /** Answer every UDP query with an empty truncated (TC) response, so clients must retry over TCP. */
  truncateUdp?: boolean;
}

export interface DnsServer {
  /** The address actually bound (a host name given in options is resolved once at start). */
  readonly host: string;
  readonly port: number;
  /** Queries answered so far (any rcode), over UDP and TCP. */
  readonly queries: number;
  /** Datagrams and TCP messages that were not a decodable DNS query, ignored. */
  readonly garbage: number;
  /** Stops both listeners and drops every connection and pending delayed answer. Idempotent. */
  close(): Promise<void>;
}

const CLASSIC_UDP_LIMIT = 512;
const MAX_EDNS_UDP = 4096;
const MAX_CNAME_HOPS = 8;
const TCP_IDLE_MS = 10_000;
const MAX_TCP_CONNECTIONS = 256;
const BIND_ATTEMPTS = 20;

const RCODE = { NOERROR: 0, FORMERR: 1, NXDOMAIN: 3, NOTIMP: 4 } as const;

function normalise(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** A small authoritative DNS server for tests and the demo: one zone, UDP and TCP on one port. */
export async function startDnsServer(opts: DnsServerOptions): Promise<DnsServer> {
  const requestedHost = opts.host ?? '127.0.0.1';
  const address = net.isIP(requestedHost) ? requestedHost : (await lookup(requestedHost)).address;
  const family = net.isIPv6(address) ? 'udp6' : 'udp4';
  const zone = new Map<string, DnsZoneRecords>();
  for (const [name, recs] of Object.entries(opts.records)) zone.set(normalise(name), recs);
  const ttl = opts.ttl ?? 60;
  const delayMs = opts.delayMs ?? 0;

  let queries = 0;
  let garbage = 0;
  let closed = false;
  const timers = new Set<NodeJS.Timeout>();
  const connections = new Set<net.Socket>();

  /** Runs `fn` after the configured delay, unless the server closes first. */
  const later = (fn: () => void): void => {
    if (delayMs <= 0) return fn();
    const t = setTimeout(() => {
      timers.delete(t);
      if (!closed) fn();
    }, delayMs);
    timers.add(t);
  };

  /** Builds the response to one raw message, or undefined when the message is not a query we answer. */
  const respond = (raw: Buffer, overUdp: boolean): Buffer | undefined => {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(raw);
    } catch {
      garbage++;
      return undefined;
    }
    // Never answer a response: two servers pointed at each other would loop forever.
    if (query.flag_qr) {
      garbage++;
      return undefined;
    }
    let response: Packet;
    try {
      response = answer(query, zone, ttl);
      const edns = query.additionals?.find((a) => a.type === 'OPT');
      const limit = overUdp
        ? edns && 'udpPayloadSize' in edns
          ? Math.min(Math.max(edns.udpPayloadSize, CLASSIC_UDP_LIMIT), MAX_EDNS_UDP)
          : CLASSIC_UDP_LIMIT
        : Infinity;
      if (edns) {
        response.additionals = [
          ...(response.additionals ?? []),
          { type: 'OPT', name: '.', udpPayloadSize: MAX_EDNS_UDP } as Answer,
        ];
      }
      let encoded = dnsPacket.encode(response);
      if (overUdp && (opts.truncateUdp || encoded.length > limit)) {
        encoded = dnsPacket.encode({
          ...response,
          flags: (response.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE,
          answers: [],
          authorities: [],
          additionals: [],
        });
      }
      queries++;
      return encoded;
    } catch {
      // A question that decodes but cannot be encoded back (mangled labels, odd classes).
      garbage++;
      return undefined;
    }
  };

  // UDP sockets whose port number was taken for TCP stay open until we are bound, so the kernel
  // cannot hand the same port straight back to the next attempt.
  const rejected: dgram.Socket[] = [];
  const releaseRejected = () => rejected.splice(0).forEach((u) => u.close());
  for (let attempt = 1; ; attempt++) {
    const udp = dgram.createSocket({ type: family });
    const udpPort = await new Promise<number>((resolve, reject) => {
      udp.once('error', (err) => {
        udp.close();
        reject(err);
      });
      udp.bind(opts.port ?? 0, address, () => {
        udp.removeAllListeners('error');
        resolve(udp.address().port);
      });
    });
    const tcp = net.createServer();
    tcp.maxConnections = MAX_TCP_CONNECTIONS;
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ port: udpPort, host: address, exclusive: true }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      const inUse = (err as { code?: string }).code === 'EADDRINUSE';
      // Only an ephemeral UDP port can be swapped for another; a fixed port is the caller's problem.
      if (inUse && (opts.port ?? 0) === 0 && attempt < BIND_ATTEMPTS) {
        rejected.push(udp);
        continue;
      }
      udp.close();
      releaseRejected();
      throw err;
    }
    releaseRejected();

    udp.on('error', () => {
      // A bound UDP socket only reports transient errors (ICMP from clients that went away); keep serving.
    });
    udp.on('message', (msg, rinfo) => {
      const out = respond(msg, true);
      if (out === undefined) return;
      later(() => udp.send(out, rinfo.port, rinfo.address, () => {}));
    });

    tcp.on('connection', (sock) => {
      connections.add(sock);
      sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
      sock.on('error', () => {});
      sock.on('close', () => connections.delete(sock));
      let buffered: Buffer = Buffer.alloc(0);
      sock.on('data', (chunk: Buffer) => {
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        // Each message is a 2-byte length then that many bytes; buffering never exceeds one message.
        while (buffered.length >= 2) {
          const len = buffered.readUInt16BE(0);
          if (len < 12) {
            garbage++;
            sock.destroy();
            return;
          }
          if (buffered.length < len + 2) break;
          const msg = buffered.subarray(2, len + 2);
          buffered = buffered.subarray(len + 2);
          const out = respond(msg, false);
          if (out === undefined) continue;
          const framed = Buffer.alloc(out.length + 2);
          framed.writeUInt16BE(out.length, 0);
          out.copy(framed, 2);
          later(() => {
            if (!sock.destroyed) sock.write(framed);
          });
        }
      });
    });

    let closing: Promise<void> | undefined;
    return {
      host: address,
      port: udpPort,
      get queries() {
        return queries;
      },
      get garbage() {
        return garbage;
      },
      close() {
        closing ??= (async () => {
          closed = true;
          for (const t of timers) clearTimeout(t);
          timers.clear();
          for (const s of connections) s.destroy();
          await Promise.all([
            new Promise<void>((resolve) => udp.close(() => resolve())),
            new Promise<void>((resolve) => tcp.close(() => resolve())),
          ]);
        })();
        return closing;
      },
    };
  }
}

/** The authoritative answer to one decoded query. */
function answer(query: DecodedPacket, zone: Map<string, DnsZoneRecords>, ttl: number): Packet {
  const questions = query.questions ?? [];
  const header = (rcode: number): Packet => ({
    type: 'response',
    id: query.id ?? 0,
    // Keep the opcode and RD bits the client sent; set AA because we are the authority for every name.
    flags: ((query.flags ?? 0) & 0x7900) | dnsPacket.AUTHORITATIVE_ANSWER | rcode,
    questions,
    answers: [],
    authorities: [],
    additionals: [],
  });
  const opcode = ((query.flags ?? 0) >> 11) & 0xf;
  if (opcode !== 0) return header(RCODE.NOTIMP);
  const q: Question | undefined = questions[0];
  if (questions.length !== 1 || q === undefined) return header(RCODE.FORMERR);

  const res = header(RCODE.NOERROR);
  const answers: Answer[] = [];
  let name = normalise(q.name);
  let owner = q.name;
  for (let hop = 0; ; hop++) {
    const recs = zone.get(name);
    if (recs === undefined) {
      // A CNAME that leads outside the zone is a complete answer; one that dangles inside it is NXDOMAIN.
      if (hop === 0 || inZone(name, zone)) {
        res.flags = (res.flags ?? 0) | RCODE.NXDOMAIN;
        res.authorities = soaFor(name, zone, ttl);
      }
      break;
    }
    if (recs.CNAME !== undefined && q.type !== 'CNAME' && hop < MAX_CNAME_HOPS) {
      answers.push({ type: 'CNAME', name: owner, ttl, data: recs.CNAME });
      owner = recs.CNAME;
      name = normalise(recs.CNAME);
      continue;
    }
    const found = recordsOf(owner, recs, q.type, ttl);
    answers.push(...found);
    if (found.length === 0 && answers.length === 0) res.authorities = soaFor(name, zone, ttl);
    break;
  }
  res.answers = answers;
  return res;
}

/** True when `name` sits under a name that owns an SOA, i.e. inside a zone we are authoritative for. */
function inZone(name: string, zone: Map<string, DnsZoneRecords>): boolean {
  return soaOwner(name, zone) !== undefined;
}

function soaOwner(name: string, zone: Map<string, DnsZoneRecords>): string | undefined {
  const labels = name.split('.');
  for (let i = 0; i < labels.length; i++) {
    const candidate = labels.slice(i).join('.');
    if (zone.get(candidate)?.SOA) return candidate;
  }
  return undefined;
}

/** The zone's SOA for the authority section of negative answers (RFC 2308), if the zone has one. */
function soaFor(name: string, zone: Map<string, DnsZoneRecords>, ttl: number): Answer[] {
  const owner = soaOwner(name, zone);
  if (owner === undefined) return [];
  return recordsOf(owner, zone.get(owner)!, 'SOA', ttl);
}

function recordsOf(owner: string, recs: DnsZoneRecords, type: string, ttl: number): Answer[] {
  const want = (t: string) => type === t || type === 'ANY';
  const out: Answer[] = [];
  if (want('A')) for (const a of recs.A ?? []) out.push({ type: 'A', name: owner, ttl, data: a });
  if (want('AAAA')) for (const a of recs.AAAA ?? []) out.push({ type: 'AAAA', name: owner, ttl, data: a });
  if (want('TXT'))
    for (const t of recs.TXT ?? []) out.push({ type: 'TXT', name: owner, ttl, data: splitTxt(t) });
  if (want('CNAME') && recs.CNAME !== undefined)
    out.push({ type: 'CNAME', name: owner, ttl, data: recs.CNAME });
  if (want('MX')) for (const m of recs.MX ?? []) out.push({ type: 'MX', name: owner, ttl, data: m });
  if (want('NS')) for (const n of recs.NS ?? []) out.push({ type: 'NS', name: owner, ttl, data: n });
  if (want('PTR')) for (const p of recs.PTR ?? []) out.push({ type: 'PTR', name: owner, ttl, data: p });
  if (want('SRV')) for (const s of recs.SRV ?? []) out.push({ type: 'SRV', name: owner, ttl, data: s });
  if (want('SOA') && recs.SOA) out.push({ type: 'SOA', name: owner, ttl, data: recs.SOA });
  if (want('CAA'))
    for (const c of recs.CAA ?? []) out.push({ type: 'CAA', name: owner, ttl, data: { flags: 0, ...c } });
  return out;
}

/** A TXT character-string holds at most 255 bytes; longer text becomes several strings of one record. */
function splitTxt(text: string): Buffer[] {
  const bytes = Buffer.from(text);
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) parts.push(bytes.subarray(i, i + 255));
  return parts.length > 0 ? parts : [Buffer.alloc(0)];
}
