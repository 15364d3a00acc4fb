import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import {
  TransportError,
  type Delivery,
  type Transport,
  type TransportOptions,
  type TransportStatus,
} from '../../src/transports/transport.js';
import { nextWithin } from './async.js';

export const text = (s: string) => new TextEncoder().encode(s);
export const decode = (d: Delivery) => new TextDecoder().decode(d.payload);
/** The next delivery's payload as text, or undefined if none comes within `ms`. */
export const nextText = async (iter: AsyncIterator<Delivery>, ms: number) => {
  const d = await nextWithin(iter, ms);
  return d && decode(d);
};
/** A channel no other test uses. */
export const channelName = () => `coalmine.test.${randomBytes(4).toString('hex')}`;
/** Reconnect backoff short enough for outage tests to be quick. */
export const fastReconnect: TransportOptions = { reconnect: { initialMs: 50, maxMs: 500 } };

/** Every status change of a transport from now on, with the time it was seen. */
export function recordStatus(t: Transport): (TransportStatus & { at: number })[] {
  const seen: (TransportStatus & { at: number })[] = [];
  void (async () => {
    for await (const s of t.status()) seen.push({ ...s, at: Date.now() });
  })();
  return seen;
}

/**
 * Asserts that the statuses show an outage and the recovery from it: disconnected, then reconnecting, then
 * connected again. Returns the index of that first reconnecting, for checks on its details.
 */
export function expectOutageAndRecovery(seen: readonly TransportStatus[]): number {
  const types = seen.map((s) => s.type);
  const down = types.indexOf('disconnected');
  expect(down).toBeGreaterThanOrEqual(0);
  const retry = types.indexOf('reconnecting', down);
  expect(retry).toBeGreaterThan(down);
  expect(types.lastIndexOf('connected')).toBeGreaterThan(retry);
  return retry;
}

/** Asserts that connect() failed as it must: a TransportError `not_connected` whose message names each of `mentions`. */
export function expectNotConnected(err: unknown, ...mentions: string[]): void {
  expect(err).toBeInstanceOf(TransportError);
  expect((err as TransportError).code).toBe('not_connected');
  for (const m of mentions) expect((err as Error).message).toContain(m);
}
