import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decode,
  decodeBinary,
  encode,
  encodeBinary,
  encodedSize,
  EnvelopeError,
  MAX_ENVELOPE_BYTES,
  resign,
  signedMacOffset,
  type Envelope,
} from './envelope.js';

const full: Envelope = {
  type: 'ping',
  echo: true,
  canary: 'canary-us',
  coalminer: 'eu-1',
  runId: 0xfedcba9876543210n,
  seq: 123_456_789_012n,
  intendedNs: 1_790_000_000_123_456_789n,
  sentNs: 1_790_000_000_123_999_999n,
  intervalNs: 1_000_000n,
  stamps: [1n, -2n],
  hops: [{ id: 'relay-1', ns: 1_790_000_000_124_000_000n }],
  failed: [
    [5n, 9n],
    [100n, 100n],
  ],
  replyTo: 'http://127.0.0.1:9401/coalmine',
  padding: 100,
};

describe('envelope', () => {
  it('round-trips every field in binary and text form', () => {
    for (const textOnly of [false, true]) {
      const bytes = encode(full, textOnly);
      expect(decode(bytes)).toEqual(full);
    }
    expect(new TextDecoder().decode(encode(full, true))).toMatch(/^cm1 [A-Za-z0-9_-]+$/);
  });

  it('pads to the requested size', () => {
    const bare = { ...full, padding: 0 };
    const size = encodedSize(bare);
    expect(encodeBinary({ ...bare, padding: 1000 - size }).length).toBe(1000);
    const { padding: _p, ...withoutPadding } = full;
    expect(decodeBinary(encodeBinary(withoutPadding))).toEqual(withoutPadding);
  });

  it('rejects foreign traffic with EnvelopeError', () => {
    for (const junk of ['hello', 'cm1 !!!', 'cm1 ', '{"type":"ping"}', 'CM']) {
      expect(() => decode(new TextEncoder().encode(junk))).toThrow(EnvelopeError);
    }
    const bytes = encodeBinary(full);
    expect(() => decodeBinary(bytes.subarray(0, 30))).toThrow(/truncated/);
    const wrongVersion = bytes.slice();
    wrongVersion[2] = 9;
    expect(() => decodeBinary(wrongVersion)).toThrow(/version 9/);
  });

  it('survives 100,000 random and mutated inputs without any other exception', () => {
    const valid = [
      encodeBinary(full),
      encode(full, true),
      encodeBinary({ ...full, hops: [], failed: [], stamps: [] }),
    ];
    let decoded = 0;
    for (let i = 0; i < 100_000; i++) {
      let input: Uint8Array;
      if (i % 2 === 0) {
        input = new Uint8Array(randomBytes(i % 200));
      } else {
        input = valid[i % valid.length]!.slice();
        const flips = 1 + (i % 4);
        for (let f = 0; f < flips; f++) {
          const pos = (i * 7919 + f * 104729) % input.length;
          input[pos] = (input[pos]! + 1 + ((i >> 3) % 255)) & 0xff;
        }
        if (i % 5 === 0) input = input.subarray(0, (i * 31) % input.length);
      }
      try {
        decode(input);
        decoded++;
      } catch (err) {
        if (!(err instanceof EnvelopeError))
          throw new Error(`input ${Buffer.from(input).toString('hex')} threw ${String(err)}`);
      }
    }
    // Mutations of padding or timestamps still decode; that is fine, and shows the fuzzer reached deep.
    expect(decoded).toBeGreaterThan(0);
  });

  it('signs with a shared secret: the mac covers every field, and only the secret verifies it', () => {
    const key = 'shared secret';
    for (const textOnly of [false, true]) {
      const bytes = encode(full, textOnly, key);
      expect(decode(bytes, key)).toEqual({ ...full, signature: 'valid' });
      // Read without the secret, it is marked as not checked, never as valid.
      expect(decode(bytes).signature).toBe('unchecked');
      expect(() => decode(bytes, 'another secret')).toThrow(
        expect.objectContaining({ name: 'EnvelopeError', fault: 'bad_signature' }),
      );
      // An unsigned envelope carries no signature at all.
      expect(decode(encode(full, textOnly), key).signature).toBeUndefined();
    }
    // Any change to a signed field breaks the mac.
    const bin = encodeBinary(full, key);
    const macAt = signedMacOffset(bin, full.padding!);
    for (let i = 5; i < macAt; i++) {
      const tampered = bin.slice();
      tampered[i]! ^= 1;
      let fault = '';
      try {
        decodeBinary(tampered, key);
      } catch (err) {
        fault = err instanceof EnvelopeError ? err.fault : 'other';
      }
      expect(['bad_signature', 'malformed'], `byte ${i}`).toContain(fault);
    }
    // A template patched after encoding is signed again in place.
    const patched = bin.slice();
    new DataView(patched.buffer).setBigUint64(patched.indexOf(0xfe), 1n);
    expect(() => decodeBinary(patched, key)).toThrow(EnvelopeError);
    resign(patched, macAt, key);
    expect(decodeBinary(patched, key).signature).toBe('valid');
  });

  it('refuses anything larger than an envelope can be without reading it', () => {
    expect(() => decode(new Uint8Array(MAX_ENVELOPE_BYTES + 1))).toThrow(/larger than any envelope/);
  });
});
