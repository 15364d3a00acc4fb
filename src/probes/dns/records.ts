import { isIP } from 'node:net';
import type { Answer } from 'dns-packet';

/** Record types the probe can ask for. */
export const RECORD_TYPES = ['A', 'AAAA', 'CNAME', 'MX', 'TXT', 'NS', 'SOA', 'SRV', 'PTR', 'CAA'] as const;
export type RecordType = (typeof RECORD_TYPES)[number];

/** Header RCODEs by number (RFC 1035, RFC 2136). */
export const RCODE_NAMES = [
  'NOERROR',
  'FORMERR',
  'SERVFAIL',
  'NXDOMAIN',
  'NOTIMP',
  'REFUSED',
  'YXDOMAIN',
  'YXRRSET',
  'NXRRSET',
  'NOTAUTH',
  'NOTZONE',
] as const;
export type RcodeName = (typeof RCODE_NAMES)[number];

export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

function fqdn(name: string): string {
  return name === '' || name === '.' ? '.' : name.endsWith('.') ? name : `${name}.`;
}

/** A character-string in zone-file form: quoted, with `"` and `\` escaped and non-printables as \DDD. */
function quote(bytes: Buffer): string {
  let out = '"';
  for (const b of bytes) {
    if (b === 0x22 || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b < 0x20 || b > 0x7e) out += `\\${String(b).padStart(3, '0')}`;
    else out += String.fromCharCode(b);
  }
  return `${out}"`;
}

function rdata(rr: Answer): string {
  switch (rr.type) {
    case 'A':
    case 'AAAA':
      return rr.data;
    case 'CNAME':
    case 'DNAME':
    case 'NS':
    case 'PTR':
      return fqdn(rr.data);
    case 'MX':
      return `${rr.data.preference ?? 0} ${fqdn(rr.data.exchange)}`;
    case 'TXT': {
      const parts = Array.isArray(rr.data) ? rr.data : [rr.data];
      return parts.map((p) => quote(Buffer.isBuffer(p) ? p : Buffer.from(p))).join(' ');
    }
    case 'SOA': {
      const d = rr.data;
      return [fqdn(d.mname), fqdn(d.rname), d.serial, d.refresh, d.retry, d.expire, d.minimum]
        .map((v) => v ?? 0)
        .join(' ');
    }
    case 'SRV':
      return `${rr.data.priority ?? 0} ${rr.data.weight ?? 0} ${rr.data.port} ${fqdn(rr.data.target)}`;
    case 'CAA':
      return `${rr.data.flags ?? (rr.data.issuerCritical ? 128 : 0)} ${rr.data.tag} ${quote(Buffer.from(rr.data.value))}`;
    case 'OPT':
      return `udp=${rr.udpPayloadSize} version=${rr.ednsVersion} do=${rr.flag_do}`;
    default:
      // RFC 3597's form for data we do not render field by field.
      if (Buffer.isBuffer(rr.data)) return `\\# ${rr.data.length} ${rr.data.toString('hex')}`;
      return JSON.stringify(rr.data);
  }
}

/**
 * A record in zone-file presentation form, the same text blackbox_exporter's regexps are matched against:
 * `name.<TAB>ttl<TAB>class<TAB>type<TAB>rdata`, e.g. `example.com.\t300\tIN\tA\t192.0.2.1`.
 */
export function recordToText(rr: Answer): string {
  if (rr.type === 'OPT') return `.\t0\tOPT\t${rdata(rr)}`;
  return [fqdn(rr.name), rr.ttl ?? 0, rr.class ?? 'IN', rr.type, rdata(rr)].join('\t');
}

/** `4.3.2.1.in-addr.arpa` for 1.2.3.4, the nibble form for IPv6; undefined when `ip` is not an address. */
export function reverseName(ip: string): string | undefined {
  const v = isIP(ip);
  if (v === 4) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  if (v !== 6) return undefined;
  const [head = '', tail = ''] = ip.split('::') as [string, string?];
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  let h = groups(head);
  let t = ip.includes('::') ? groups(tail) : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two groups.
  const lastOf = (g: string[]) => g[g.length - 1] ?? '';
  const expandV4 = (g: string[]) => {
    const last = lastOf(g);
    if (!last.includes('.')) return g;
    const o = last.split('.').map(Number) as [number, number, number, number];
    return [...g.slice(0, -1), ((o[0] << 8) | o[1]).toString(16), ((o[2] << 8) | o[3]).toString(16)];
  };
  if (ip.includes('::')) t = expandV4(t);
  else h = expandV4(h);
  const all = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const nibbles = all.map((g) => g.padStart(4, '0')).join('');
  return `${[...nibbles].reverse().join('.')}.ip6.arpa`;
}
