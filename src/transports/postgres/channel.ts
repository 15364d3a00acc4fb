import { createHash } from 'node:crypto';

/** PostgreSQL identifiers are at most NAMEDATALEN - 1 = 63 bytes; pg_notify refuses longer channel names. */
export const MAX_CHANNEL_BYTES = 63;
/** NOTIFY payloads must be shorter than 8000 bytes (default build). */
export const MAX_PAYLOAD_BYTES = 7999;

/**
 * The NOTIFY channel for a logical channel name. Names that fit are used as they are (case and dots
 * kept: LISTEN quotes them, pg_notify takes them as text); longer ones become a readable prefix plus a
 * hash of the whole name, so the mapping is the same in every process.
 */
export function notifyChannel(logical: string): string {
  if (Buffer.byteLength(logical) <= MAX_CHANNEL_BYTES && !logical.includes('\0')) return logical;
  const hash = createHash('sha256').update(logical).digest('hex').slice(0, 16);
  const prefix = logical.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, MAX_CHANNEL_BYTES - hash.length - 1);
  return `${prefix}~${hash}`;
}

/** The channel as a quoted SQL identifier, for LISTEN / UNLISTEN. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Why a payload cannot travel as a NOTIFY payload, or undefined when it can (one line of printable ASCII). */
export function payloadProblem(payload: Uint8Array): string | undefined {
  if (payload.byteLength > MAX_PAYLOAD_BYTES) {
    return `payload is ${payload.byteLength} bytes; NOTIFY carries at most ${MAX_PAYLOAD_BYTES}`;
  }
  for (let i = 0; i < payload.byteLength; i++) {
    const b = payload[i]!;
    if (b < 0x20 || b > 0x7e) {
      return `payload byte ${i} is 0x${b.toString(16).padStart(2, '0')}; NOTIFY payloads here are one line of printable ASCII (the text envelope)`;
    }
  }
  return undefined;
}
