import { DeliveryQueue } from './base.js';
import type { Delivery } from './transport.js';

/**
 * A new subscription's queue, for subscribe(): already ended when the transport is closed or `signal` has
 * aborted. Otherwise `start` registers it and returns how to unregister it, which runs when `signal` aborts.
 */
export function subscriptionQueue(
  closed: boolean,
  signal: AbortSignal,
  start: (queue: DeliveryQueue<Delivery>) => () => void,
): DeliveryQueue<Delivery> {
  const q = new DeliveryQueue<Delivery>();
  if (closed || signal.aborted) {
    q.end();
    return q;
  }
  signal.addEventListener('abort', start(q), { once: true });
  return q;
}

/**
 * Who is subscribed to each broker-side channel inside one transport. The broker side is shared by all of
 * a channel's subscribers: the first one is when the transport subscribes at the broker, the last one
 * leaving is when it unsubscribes.
 */
export class ChannelSubscribers<M> {
  private readonly byChannel = new Map<string, Set<M>>();

  /** Adds a subscriber; true when it is the channel's first. */
  add(channel: string, member: M): boolean {
    let members = this.byChannel.get(channel);
    const first = !members;
    if (!members) this.byChannel.set(channel, (members = new Set()));
    members.add(member);
    return first;
  }

  /**
   * Removes a subscriber; true when it was the channel's last, and the channel is forgotten. False also
   * when the channel was already forgotten (after clear()): nothing is left to unsubscribe then.
   */
  remove(channel: string, member: M): boolean {
    const members = this.byChannel.get(channel);
    if (!members?.delete(member) || members.size > 0) return false;
    this.byChannel.delete(channel);
    return true;
  }

  /** The channel's subscribers: one set for as long as the channel has any, so it can be held on to. */
  get(channel: string): ReadonlySet<M> | undefined {
    return this.byChannel.get(channel);
  }

  channels(): string[] {
    return [...this.byChannel.keys()];
  }

  /** Forgets one channel; returns who was subscribed to it. */
  drop(channel: string): M[] {
    const members = this.byChannel.get(channel);
    this.byChannel.delete(channel);
    return members ? [...members] : [];
  }

  /** Forgets every channel; returns everyone who was subscribed. */
  clear(): M[] {
    const all = [...this.byChannel.values()].flatMap((members) => [...members]);
    this.byChannel.clear();
    return all;
  }
}
