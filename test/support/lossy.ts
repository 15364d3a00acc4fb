import { decode } from '../../src/messaging/envelope.js';
import type { PublishReceipt, Transport } from '../../src/transports/transport.js';

/** A transport that silently drops the pings `drop` picks, claiming success: a lossy path we control. */
export function dropping(inner: Transport, drop: (seq: number) => boolean): Transport {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'publish') {
        return async (channel: string, payload: Uint8Array): Promise<PublishReceipt> => {
          const e = decode(payload);
          if (e.type === 'ping' && drop(Number(e.seq))) return {};
          return target.publish(channel, payload);
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
