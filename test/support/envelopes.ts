import { wallClockNs } from '../../src/transports/base.js';
import type { Envelope } from '../../src/messaging/envelope.js';

/** A ping sent now, with `fields` over it: what a test playing a canary, or forging one, publishes. */
export function pingNow(fields: Partial<Envelope> & Pick<Envelope, 'canary' | 'coalminer'>): Envelope {
  const now = wallClockNs();
  return { type: 'ping', runId: 0n, seq: 0n, intendedNs: now, sentNs: now, ...fields };
}
