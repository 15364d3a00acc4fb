import { redactUrl } from '../base.js';
import { UrlOptions, type UrlReading } from '../url-options.js';

export interface WebhookUrl {
  /** The peer's URL without our options. */
  peer: URL;
  /** Where this transport's own server listens; undefined with `listen=none` (publish only). */
  listen: { host: string; port: number } | undefined;
  maxBody: number;
  maxInFlight: number;
  queue: number;
  maxSockets: number;
}

const OPTIONS = ['listen', 'maxBody', 'maxInFlight', 'queue', 'maxSockets'] as const;

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Reads `http(s)://PEER_HOST:PEER_PORT[/BASE][?options]`. */
export function readWebhookUrl(url: string): UrlReading<WebhookUrl> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return {
      value: undefined,
      problems: ['not a valid URL (expected http(s)://HOST:PORT[/BASE][?options])'],
    };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    return { value: undefined, problems: ['the scheme must be http:// or https://'] };
  const o = new UrlOptions(u.searchParams, OPTIONS, u.protocol.slice(0, -1));
  const listen = readListen(u, o);
  const maxBody = o.integer('maxBody', 1024 * 1024, 1, 2 ** 31, 'bytes');
  const maxInFlight = o.integer('maxInFlight', 10_000);
  const queue = o.integer('queue', 100_000, 1, 100_000_000, 'messages');
  const maxSockets = o.integer('maxSockets', 64, 1, 65_535, 'connections');
  for (const k of OPTIONS) u.searchParams.delete(k);
  return { value: { peer: u, listen, maxBody, maxInFlight, queue, maxSockets }, problems: o.problems };
}

function readListen(u: URL, o: UrlOptions): { host: string; port: number } | undefined {
  const raw = o.string('listen');
  if (raw === 'none') return undefined;
  if (raw === undefined) {
    if (o.has('listen')) return undefined; // empty: already reported
    if (u.protocol === 'http:' && isLoopback(u.hostname))
      return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) };
    o.problem(
      `webhook URL ${redactUrl(u.toString())} needs ?listen=HOST:PORT (where this process receives webhooks), or ?listen=none to only publish`,
    );
    return undefined;
  }
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(raw);
  const port = Number(m?.[2]);
  if (!m || !m[1] || port > 65535) {
    o.problem(`option ?listen= must be HOST:PORT (port 0 to 65535) or none, got ${JSON.stringify(raw)}`);
    return undefined;
  }
  return { host: m[1], port };
}

export function checkUrl(url: string): string[] {
  return readWebhookUrl(url).problems;
}
