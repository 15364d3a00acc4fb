import { UrlOptions, type UrlReading } from '../url-options.js';

export interface WebSocketUrl {
  /** The relay's URL without our options. */
  url: string;
  connectTimeoutMs: number;
  maxInFlight: number;
  maxBufferedBytes: number;
  queue: number;
}

const OPTIONS = ['connectTimeoutMs', 'maxInFlight', 'maxBufferedBytes', 'queue'] as const;

/** Reads `ws[s]://HOST:PORT[/PATH][?options]`. */
export function readWebSocketUrl(url: string): UrlReading<WebSocketUrl> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { value: undefined, problems: ['not a valid URL (expected ws[s]://HOST:PORT[/PATH][?options])'] };
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:')
    return { value: undefined, problems: ['the scheme must be ws:// or wss://'] };
  const o = new UrlOptions(u.searchParams, OPTIONS, u.protocol.slice(0, -1));
  const connectTimeoutMs = o.integer('connectTimeoutMs', 10_000, 1, 3_600_000, 'milliseconds');
  const maxInFlight = o.integer('maxInFlight', 10_000);
  const maxBufferedBytes = o.integer('maxBufferedBytes', 16 * 1024 * 1024, 1, 2 ** 40, 'bytes');
  const queue = o.integer('queue', 100_000, 1, 100_000_000, 'messages');
  for (const k of OPTIONS) u.searchParams.delete(k);
  return {
    value: { url: u.toString(), connectTimeoutMs, maxInFlight, maxBufferedBytes, queue },
    problems: o.problems,
  };
}

export function checkUrl(url: string): string[] {
  return readWebSocketUrl(url).problems;
}
