import { describe, expect, it } from 'vitest';
import { MAX_PAYLOAD_BYTES, notifyChannel, payloadProblem, quoteIdentifier } from './channel.js';

describe('notifyChannel', () => {
  it('keeps names that fit as they are', () => {
    expect(notifyChannel('coalmine.coalminer.eu-1')).toBe('coalmine.coalminer.eu-1');
    expect(notifyChannel('a'.repeat(63))).toBe('a'.repeat(63));
  });

  it('maps longer names to 63 bytes, deterministically and distinctly', () => {
    const a = `coalmine.coalminer.${'x'.repeat(60)}.a`;
    const b = `coalmine.coalminer.${'x'.repeat(60)}.b`;
    expect(Buffer.byteLength(notifyChannel(a))).toBeLessThanOrEqual(63);
    expect(notifyChannel(a)).toBe(notifyChannel(a));
    expect(notifyChannel(a)).not.toBe(notifyChannel(b));
    expect(notifyChannel(a).startsWith('coalmine.coalminer.xxx')).toBe(true);
  });

  it('quotes identifiers for LISTEN', () => {
    expect(quoteIdentifier('Coalmine.x')).toBe('"Coalmine.x"');
    expect(quoteIdentifier('a"b')).toBe('"a""b"');
  });
});

describe('payloadProblem', () => {
  it('accepts one line of printable ASCII up to the NOTIFY limit', () => {
    expect(payloadProblem(new TextEncoder().encode('cm1 abc-_'))).toBeUndefined();
    expect(payloadProblem(new Uint8Array(MAX_PAYLOAD_BYTES).fill(0x61))).toBeUndefined();
  });

  it('explains what is wrong otherwise', () => {
    expect(payloadProblem(new Uint8Array(MAX_PAYLOAD_BYTES + 1).fill(0x61))).toMatch(/8000|7999/);
    expect(payloadProblem(new TextEncoder().encode('cm1 é'))).toMatch(/byte 4 is 0xc3/);
    expect(payloadProblem(new TextEncoder().encode('cm1\n'))).toMatch(/byte 3 is 0x0a/);
  });
});
