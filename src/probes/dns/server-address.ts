import { isIP } from 'node:net';

export interface ServerAddress {
  host: string;
  port: number;
}

const DNS_PORT = 53;

/**
 * Parses a DNS server option: `host`, `host:port`, `[v6]:port`, `[v6]` or a bare IPv6 literal.
 * Returns a message saying what is wrong when the text is not one of those.
 */
export function parseServerAddress(text: string): ServerAddress | string {
  const s = text.trim();
  const bad = `"${text}" is not a DNS server; use host, host:port, [ipv6]:port or an IP address`;
  if (s === '' || /\s/.test(s)) return bad;
  if (s.startsWith('[')) {
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
    if (!m || isIP(m[1]!) !== 6) return bad;
    return withPort(m[1]!, m[2], bad);
  }
  // Two or more colons without brackets can only be an IPv6 literal with no port.
  if (s.indexOf(':') !== s.lastIndexOf(':')) return isIP(s) === 6 ? { host: s, port: DNS_PORT } : bad;
  const [host, port] = s.split(':') as [string, string | undefined];
  if (host === '' || !/^[A-Za-z0-9._-]+$/.test(host)) return bad;
  return withPort(host, port, bad);
}

function withPort(host: string, port: string | undefined, bad: string): ServerAddress | string {
  if (port === undefined) return { host, port: DNS_PORT };
  const n = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
  if (!(n >= 1 && n <= 65535)) return `${bad} (port must be 1-65535)`;
  return { host, port: n };
}

/** `127.0.0.1:53` or `[::1]:53`, as people write a socket address. */
export function formatSocketAddress(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}
