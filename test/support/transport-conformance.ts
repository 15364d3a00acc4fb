import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransportError, type Transport } from '../../src/transports/transport.js';
import { take } from './async.js';
import { channelName, text } from './transports.js';

export interface ConformanceOptions {
  /** A fresh, unconnected transport to the system under test. */
  make(): Promise<Transport> | Transport;
  /** Time to let a new subscription settle before publishing (consumer group joins, SUBSCRIBE round trip). */
  settleMs?: number;
  /** Largest payload to try; default 16 KiB. */
  maxPayload?: number;
  /** Messages for the bulk test; default 1000. */
  bulk?: number;
  /** Whether publish() reports a broker acknowledgement time for this URL. */
  acks?: boolean;
}

/**
 * The behaviour every transport must have, run against the real system. Each transport's integration
 * test calls this with its URL, then adds what is special to it (reconnect after a broker restart, acks).
 */
export function transportConformance(name: string, opts: ConformanceOptions): void {
  describe(`${name}: transport conformance`, () => {
    let pub: Transport;
    let sub: Transport;
    const settle = () => new Promise((r) => setTimeout(r, opts.settleMs ?? 100));

    beforeAll(async () => {
      pub = await opts.make();
      sub = await opts.make();
      await Promise.all([pub.connect(AbortSignal.timeout(15_000)), sub.connect(AbortSignal.timeout(15_000))]);
    });
    afterAll(async () => {
      await Promise.all([pub?.close(), sub?.close()]);
    });

    it('is connected after connect()', () => {
      expect(pub.state).toBe('connected');
      expect(sub.state).toBe('connected');
    });

    it('delivers what was published, in order, stamped with the time it arrived', async () => {
      const ch = channelName();
      const ac = new AbortController();
      const iter = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      await settle();
      const before = process.hrtime.bigint();
      const sentAt = BigInt(Date.now()) * 1_000_000n;
      const payloads = Array.from({ length: 20 }, (_, i) => text(`cm1 message-${i}`));
      for (const p of payloads) await pub.publish(ch, p);
      const got = await take(iter, 20, 10_000);
      ac.abort();
      expect(got.map((d) => new TextDecoder().decode(d.payload))).toEqual(
        payloads.map((p) => new TextDecoder().decode(p)),
      );
      for (const d of got) expect(d.receivedNs).toBeGreaterThan(sentAt - 50_000_000n);
      expect(process.hrtime.bigint()).toBeGreaterThan(before);
    });

    it('keeps channels apart', async () => {
      const a = channelName();
      const b = channelName();
      const ac = new AbortController();
      const iterA = sub.subscribe(a, ac.signal)[Symbol.asyncIterator]();
      await settle();
      await pub.publish(b, text('cm1 for-b'));
      await pub.publish(a, text('cm1 for-a'));
      const got = await take(iterA, 1, 5000);
      got.push(...(await take(iterA, 1, 300)));
      ac.abort();
      expect(got.map((d) => new TextDecoder().decode(d.payload))).toEqual(['cm1 for-a']);
    });

    it(`carries ${opts.maxPayload ?? 16384}-byte payloads intact`, async () => {
      const ch = channelName();
      const ac = new AbortController();
      const iter = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      await settle();
      const size = opts.maxPayload ?? 16384;
      const payload = pub.textOnly
        ? text(
            'cm1 ' +
              randomBytes(size)
                .toString('base64url')
                .slice(0, size - 4),
          )
        : new Uint8Array(randomBytes(size));
      await pub.publish(ch, payload);
      const [got] = await take(iter, 1, 5000);
      ac.abort();
      expect(got && Buffer.from(got.payload).equals(Buffer.from(payload))).toBe(true);
    });

    it(`delivers ${opts.bulk ?? 1000} messages exactly once`, async () => {
      const n = opts.bulk ?? 1000;
      const ch = channelName();
      const ac = new AbortController();
      const iter = sub.subscribe(ch, ac.signal)[Symbol.asyncIterator]();
      await settle();
      await Promise.all(Array.from({ length: n }, (_, i) => pub.publish(ch, text(`cm1 ${i}`))));
      const got = await take(iter, n, 20_000);
      // Anything more arriving soon after is a duplicate.
      got.push(...(await take(iter, 1, 500)));
      ac.abort();
      const ids = got.map((d) => Number(new TextDecoder().decode(d.payload).slice(4)));
      expect(ids.length).toBe(n);
      expect(new Set(ids).size).toBe(n);
    });

    it('ends a subscription when its signal aborts', async () => {
      const ac = new AbortController();
      const iter = sub.subscribe(channelName(), ac.signal)[Symbol.asyncIterator]();
      await settle();
      const next = iter.next();
      ac.abort();
      await expect(next).resolves.toMatchObject({ done: true });
    });

    if (opts.acks) {
      it('reports the broker acknowledgement time', async () => {
        const before = BigInt(Date.now()) * 1_000_000n;
        const receipt = await pub.publish(channelName(), text('cm1 ack'));
        expect(receipt.ackNs).toBeDefined();
        expect(receipt.ackNs!).toBeGreaterThanOrEqual(before - 5_000_000n);
      });
    }

    it('closes idempotently and rejects publishing afterwards with a TransportError', async () => {
      const t = await opts.make();
      await t.connect(AbortSignal.timeout(15_000));
      await Promise.all([t.close(), t.close()]);
      await expect(t.publish(channelName(), text('cm1 late'))).rejects.toBeInstanceOf(TransportError);
      expect(t.state).toBe('closed');
    });
  });
}
