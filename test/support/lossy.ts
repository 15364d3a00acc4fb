import { decode } from '../../src/messaging/envelope.js';
import { TransportError, type PublishReceipt, type Transport } from '../../src/transports/transport.js';

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

/**
 * A transport that delivers the pings `inDoubt` picks and then reports their publish as failed, as when a
 * connection drops after the broker took a message but before its reply came back.
 */
export function deliveringButFailing(inner: Transport, inDoubt: (seq: number) => boolean): Transport {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'publish') {
        return async (channel: string, payload: Uint8Array): Promise<PublishReceipt> => {
          const receipt = await target.publish(channel, payload);
          const e = decode(payload);
          if (e.type === 'ping' && inDoubt(Number(e.seq)))
            throw new TransportError('not_connected', 'connection lost before the reply (test)');
          return receipt;
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
