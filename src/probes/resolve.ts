import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { z } from 'zod';
import type { Clock } from '../core/clock.js';

/** Which IP family to use for a hostname, as blackbox_exporter's `preferred_ip_protocol`. */
export const ipProtocolOption = z
  .enum(['ip4', 'ip6', 'auto'])
  .default('auto')
  .describe('IP family for hostnames: ip4, ip6, or auto (first address the resolver gives)');

export type IpProtocol = z.output<typeof ipProtocolOption>;

export interface Resolved {
  address: string;
  family: 4 | 6;
  durationNs: bigint;
}

/**
 * Resolves a host name through the system resolver (so /etc/hosts applies) and times it.
 * An IP literal resolves to itself in zero time. Rejects with the resolver's error (code ENOTFOUND...).
 */
export async function resolveHost(
  host: string,
  protocol: IpProtocol,
  clock: Clock,
  signal: AbortSignal,
): Promise<Resolved> {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const literal = isIP(bare);
  if (literal !== 0) return { address: bare, family: literal as 4 | 6, durationNs: 0n };
  signal.throwIfAborted();
  const start = clock.nowNs();
  const family = protocol === 'ip4' ? 4 : protocol === 'ip6' ? 6 : 0;
  const lookupPromise = lookup(bare, { family, verbatim: true });
  const result = await raceAbort(lookupPromise, signal);
  return { address: result.address, family: result.family as 4 | 6, durationNs: clock.nowNs() - start };
}

/** Settles with `p`, or rejects with the signal's reason as soon as it aborts. */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
