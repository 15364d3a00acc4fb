/**
 * The ping envelope: one per message between canaries and coalminers, versioned, binary on binary
 * transports and a single ASCII line (`cm1 <base64url>`) on text ones. Layout (big-endian):
 *
 *   'C' 'M' | version u8 | type u8 | flags u8 | canary (u8 len + utf8) | coalminer (u8 len + utf8)
 *   | runId u64 | seq u64 | intendedNs i64 | sentNs i64 | intervalNs u64
 *   | stamps: u8 count + i64 each | hops: u8 count + (u8 len + id + i64 ns) each
 *   | failed send ranges: u8 count + (u64 first, u64 last) each | replyTo: u16 len + utf8
 *   | [mac: 16 bytes, when flag 2 is set] | padding
 *
 * Flags: 1 = echo requested, 2 = signed. A signed envelope carries the first 16 bytes of
 * HMAC-SHA256(secret, every byte before the mac), so a party without the shared secret cannot forge a
 * ping, registration, confirm or clock-sync reply; padding (zeros) is outside it.
 *
 * A `notice` carries only failed send ranges: the canary's last word on publishes that failed after its
 * last ping. Times are wall-clock nanoseconds since the Unix epoch. Anything that does not decode is `foreign`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { CoalmineError } from '../core/errors.js';

export const ENVELOPE_VERSION = 1;
/** Bytes of the truncated HMAC-SHA256 a signed envelope carries. */
export const MAC_BYTES = 16;
const FLAG_ECHO = 1;
const FLAG_SIGNED = 2;

export const MESSAGE_TYPES = [
  'ping',
  'echo',
  'register',
  'confirm',
  'unregister',
  'clocksync',
  'clocksync-reply',
  'notice',
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export interface Hop {
  id: string;
  ns: bigint;
}

export interface Envelope {
  type: MessageType;
  /** Flag: the coalminer should answer this ping with an echo. */
  echo?: boolean;
  canary: string;
  coalminer: string;
  runId: bigint;
  seq: bigint;
  intendedNs: bigint;
  sentNs: bigint;
  /** The canary's interval between pings of this flow (0 when not pinging). */
  intervalNs?: bigint;
  /** Type-specific timestamps: clock sync t1, t2, t3; an echo's receive time. */
  stamps?: bigint[];
  /** Stamps added by relays on the way. */
  hops?: Hop[];
  /** Sequence ranges of this flow whose publish failed recently, so the coalminer does not call them lost. */
  failed?: [bigint, bigint][];
  /** Where to answer, for transports without named channels (webhook URLs). */
  replyTo?: string;
  /** Bytes of padding to reach the configured message size (content is zeros). */
  padding?: number;
  /**
   * Set by decode: `valid` when the envelope carried a mac that matched the key given to decode,
   * `unchecked` when it carried one and no key was given, absent when it was not signed.
   */
  signature?: 'valid' | 'unchecked';
}

/** Why an envelope was refused: it does not decode, or its signature is wrong. */
export type EnvelopeFault = 'malformed' | 'bad_signature';

export class EnvelopeError extends CoalmineError {
  constructor(
    message: string,
    readonly fault: EnvelopeFault = 'malformed',
  ) {
    super(message);
  }
}

/** A shared secret for signing envelopes: the bytes of a string, or bytes. */
export type EnvelopeKey = Uint8Array | string;

function mac(key: EnvelopeKey, bytes: Uint8Array, end: number): Buffer {
  return createHmac('sha256', key).update(bytes.subarray(0, end)).digest().subarray(0, MAC_BYTES);
}

/**
 * Writes the mac of an encoded, signed envelope in place: for a template whose fields were patched after
 * encoding (the canary's ping). `macOffset` is where encodeBinary put the mac (signedMacOffset).
 */
export function resign(bytes: Uint8Array, macOffset: number, key: EnvelopeKey): void {
  bytes.set(mac(key, bytes, macOffset), macOffset);
}

/** Where the mac of a signed envelope encoded with `padding` bytes of padding sits. */
export function signedMacOffset(bytes: Uint8Array, padding: number): number {
  return bytes.length - padding - MAC_BYTES;
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_LIST = 255;
const U64_MAX = (1n << 64n) - 1n;
const TEXT_PREFIX = 'cm1 ';
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function isValidName(name: string): boolean {
  return NAME.test(name);
}

/** Size of the envelope without padding, so a canary can pad to a target size. */
export function encodedSize(e: Envelope): number {
  return encodeBinary({ ...e, padding: 0 }).length;
}

/** Encodes an envelope; with a key, signed (flag 2 and a mac after replyTo). */
export function encodeBinary(e: Envelope, key?: EnvelopeKey): Uint8Array {
  const canary = encoder.encode(e.canary);
  const coalminer = encoder.encode(e.coalminer);
  const replyTo = encoder.encode(e.replyTo ?? '');
  const hops = (e.hops ?? [])
    .slice(-MAX_LIST)
    .map((h) => ({ id: encoder.encode(h.id.slice(0, 64)), ns: h.ns }));
  const stamps = (e.stamps ?? []).slice(0, MAX_LIST);
  const failed = (e.failed ?? []).slice(-MAX_LIST);
  if (canary.length > 64 || coalminer.length > 64) throw new EnvelopeError('names are at most 64 bytes');
  if (replyTo.length > 0xffff) throw new EnvelopeError('replyTo is at most 65535 bytes');
  const padding = Math.max(0, Math.floor(e.padding ?? 0));
  const size =
    5 +
    1 +
    canary.length +
    1 +
    coalminer.length +
    8 * 5 +
    1 +
    8 * stamps.length +
    1 +
    hops.reduce((n, h) => n + 1 + h.id.length + 8, 0) +
    1 +
    16 * failed.length +
    2 +
    replyTo.length +
    (key !== undefined ? MAC_BYTES : 0) +
    padding;
  const buf = new Uint8Array(size);
  const view = new DataView(buf.buffer);
  let o = 0;
  buf[o++] = 0x43;
  buf[o++] = 0x4d;
  buf[o++] = ENVELOPE_VERSION;
  const typeIndex = MESSAGE_TYPES.indexOf(e.type);
  if (typeIndex < 0) throw new EnvelopeError(`unknown type ${String(e.type)}`);
  buf[o++] = typeIndex;
  buf[o++] = (e.echo ? FLAG_ECHO : 0) | (key !== undefined ? FLAG_SIGNED : 0);
  buf[o++] = canary.length;
  buf.set(canary, o);
  o += canary.length;
  buf[o++] = coalminer.length;
  buf.set(coalminer, o);
  o += coalminer.length;
  view.setBigUint64(o, BigInt.asUintN(64, e.runId));
  view.setBigUint64(o + 8, BigInt.asUintN(64, e.seq));
  view.setBigInt64(o + 16, BigInt.asIntN(64, e.intendedNs));
  view.setBigInt64(o + 24, BigInt.asIntN(64, e.sentNs));
  view.setBigUint64(o + 32, BigInt.asUintN(64, e.intervalNs ?? 0n));
  o += 40;
  buf[o++] = stamps.length;
  for (const s of stamps) {
    view.setBigInt64(o, BigInt.asIntN(64, s));
    o += 8;
  }
  buf[o++] = hops.length;
  for (const h of hops) {
    buf[o++] = h.id.length;
    buf.set(h.id, o);
    o += h.id.length;
    view.setBigInt64(o, BigInt.asIntN(64, h.ns));
    o += 8;
  }
  buf[o++] = failed.length;
  for (const [a, b] of failed) {
    view.setBigUint64(o, BigInt.asUintN(64, a));
    view.setBigUint64(o + 8, BigInt.asUintN(64, b));
    o += 16;
  }
  view.setUint16(o, replyTo.length);
  o += 2;
  buf.set(replyTo, o);
  o += replyTo.length;
  if (key !== undefined) resign(buf, o, key);
  return buf;
}

/**
 * Decodes a binary envelope; throws EnvelopeError on anything malformed (fault `malformed`) or, given a
 * key, on a signed envelope whose mac does not match (fault `bad_signature`), never anything else.
 */
export function decodeBinary(bytes: Uint8Array, key?: EnvelopeKey): Envelope {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  const need = (n: number) => {
    if (o + n > bytes.length)
      throw new EnvelopeError(`truncated at byte ${o} (need ${n} more of ${bytes.length})`);
  };
  const str = (len: number) => {
    need(len);
    const cached = nameCache(bytes, o, len);
    if (cached !== undefined) {
      o += len;
      return cached;
    }
    let s: string;
    try {
      s = decoder.decode(bytes.subarray(o, o + len));
    } catch {
      throw new EnvelopeError(`invalid UTF-8 at byte ${o}`);
    }
    o += len;
    if (len <= 64) rememberName(bytes, o - len, len, s);
    return s;
  };
  need(5);
  if (bytes[0] !== 0x43 || bytes[1] !== 0x4d) throw new EnvelopeError('not a coalmine envelope (bad magic)');
  if (bytes[2] !== ENVELOPE_VERSION) throw new EnvelopeError(`unsupported envelope version ${bytes[2]}`);
  const type = MESSAGE_TYPES[bytes[3]!];
  if (!type) throw new EnvelopeError(`unknown message type ${bytes[3]}`);
  const flags = bytes[4]!;
  o = 5;
  need(1);
  const canary = str(bytes[o++]!);
  need(1);
  const coalminer = str(bytes[o++]!);
  if (!NAME.test(canary)) throw new EnvelopeError('invalid canary name');
  if (coalminer !== '' && !NAME.test(coalminer)) throw new EnvelopeError('invalid coalminer name');
  need(40);
  const e: Envelope = {
    type,
    canary,
    coalminer,
    runId: view.getBigUint64(o),
    seq: view.getBigUint64(o + 8),
    intendedNs: view.getBigInt64(o + 16),
    sentNs: view.getBigInt64(o + 24),
    intervalNs: view.getBigUint64(o + 32),
  };
  if (flags & FLAG_ECHO) e.echo = true;
  o += 40;
  need(1);
  const nStamps = bytes[o++]!;
  need(8 * nStamps);
  if (nStamps > 0) {
    e.stamps = [];
    for (let i = 0; i < nStamps; i++, o += 8) e.stamps.push(view.getBigInt64(o));
  }
  need(1);
  const nHops = bytes[o++]!;
  if (nHops > 0) {
    e.hops = [];
    for (let i = 0; i < nHops; i++) {
      need(1);
      const id = str(bytes[o++]!);
      need(8);
      e.hops.push({ id, ns: view.getBigInt64(o) });
      o += 8;
    }
  }
  need(1);
  const nFailed = bytes[o++]!;
  need(16 * nFailed);
  if (nFailed > 0) {
    e.failed = [];
    for (let i = 0; i < nFailed; i++, o += 16) {
      const a = view.getBigUint64(o);
      const b = view.getBigUint64(o + 8);
      if (b < a || b > U64_MAX) throw new EnvelopeError('invalid failed-send range');
      e.failed.push([a, b]);
    }
  }
  need(2);
  const replyLen = view.getUint16(o);
  o += 2;
  const replyTo = str(replyLen);
  if (replyTo) e.replyTo = replyTo;
  if (flags & FLAG_SIGNED) {
    need(MAC_BYTES);
    if (key === undefined) e.signature = 'unchecked';
    else if (timingSafeEqual(mac(key, bytes, o), bytes.subarray(o, o + MAC_BYTES))) e.signature = 'valid';
    else throw new EnvelopeError('signature does not match the shared secret', 'bad_signature');
    o += MAC_BYTES;
  }
  if (bytes.length > o) e.padding = bytes.length - o;
  return e;
}

export function encodeText(e: Envelope, key?: EnvelopeKey): string {
  return TEXT_PREFIX + Buffer.from(encodeBinary(e, key)).toString('base64url');
}

/** The text-line form of an already encoded binary envelope. */
export function textLine(binary: Uint8Array): Uint8Array {
  return encoder.encode(
    TEXT_PREFIX + Buffer.from(binary.buffer, binary.byteOffset, binary.byteLength).toString('base64url'),
  );
}

export function decodeText(line: string, key?: EnvelopeKey): Envelope {
  const s = line.trim();
  if (!s.startsWith(TEXT_PREFIX)) throw new EnvelopeError('not a coalmine text envelope (no "cm1 " prefix)');
  const body = s.slice(TEXT_PREFIX.length);
  if (!/^[A-Za-z0-9_-]*$/.test(body)) throw new EnvelopeError('text envelope is not base64url');
  return decodeBinary(new Uint8Array(Buffer.from(body, 'base64url')), key);
}

/** Encodes for a transport: the text line on text-only transports, binary elsewhere; signed with a key. */
export function encode(e: Envelope, textOnly: boolean, key?: EnvelopeKey): Uint8Array {
  return textOnly ? encoder.encode(encodeText(e, key)) : encodeBinary(e, key);
}

/** No envelope is larger (a ping padded to the largest size, as a text line): bigger is not ours. */
export const MAX_ENVELOPE_BYTES = 2 * 1024 * 1024;

/** Decodes either form (a text line starts with "cm1 "), whatever the transport; see decodeBinary. */
export function decode(payload: Uint8Array, key?: EnvelopeKey): Envelope {
  if (payload.length > MAX_ENVELOPE_BYTES)
    throw new EnvelopeError(`${payload.length} bytes is larger than any envelope`);
  if (
    payload.length >= 4 &&
    payload[0] === 0x63 &&
    payload[1] === 0x6d &&
    payload[2] === 0x31 &&
    payload[3] === 0x20
  ) {
    let line: string;
    try {
      line = decoder.decode(payload);
    } catch {
      throw new EnvelopeError('text envelope is not UTF-8');
    }
    return decodeText(line, key);
  }
  return decodeBinary(payload, key);
}

/**
 * The few names a coalminer sees over and over (its canaries, itself), decoded once: comparing a few
 * bytes is far cheaper than decoding UTF-8 into a new string for every ping.
 */
const NAME_CACHE: { bytes: Uint8Array; s: string }[] = [];

function nameCache(buf: Uint8Array, o: number, len: number): string | undefined {
  outer: for (const e of NAME_CACHE) {
    if (e.bytes.length !== len) continue;
    for (let i = 0; i < len; i++) if (e.bytes[i] !== buf[o + i]) continue outer;
    return e.s;
  }
  return undefined;
}

function rememberName(buf: Uint8Array, o: number, len: number, s: string): void {
  NAME_CACHE.unshift({ bytes: buf.slice(o, o + len), s });
  if (NAME_CACHE.length > 8) NAME_CACHE.pop();
}
