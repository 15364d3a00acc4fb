/**
 * A messaging path that canaries publish pings into and coalminers receive them from.
 * Channels are logical, dot-separated names (`coalmine.coalminer.eu-1`); each transport maps them to
 * its own naming (MQTT topics, AMQP routing keys, Kafka topics, NOTIFY channels...).
 */
export interface Transport {
  /** The kind word: folder name, URL scheme family and registry key. */
  readonly kind: string;
  /** The transport's URL with any password removed, for logs and labels. */
  readonly displayUrl: string;
  /** True when payloads must be a single line of printable ASCII (the envelope's text form is used). */
  readonly textOnly: boolean;
  /**
   * Connects, resolving once the first connection is up. After that the transport reconnects on its own
   * (backoff with jitter) until closed, re-establishing subscriptions; `status()` tells what happens.
   * Rejects with TransportError when the first connection fails or `signal` aborts.
   */
  connect(signal?: AbortSignal): Promise<void>;
  /**
   * Publishes one message. Resolves when the system has taken it (for systems with acknowledgements:
   * when the broker acknowledged it, with `ackNs`). Rejects with TransportError (never throws
   * synchronously) when not connected, refused, or past `timeoutMs`.
   */
  publish(channel: string, payload: Uint8Array, opts?: PublishOptions): Promise<PublishReceipt>;
  /**
   * Receives messages published to `channel` from now on, until `signal` aborts or the transport
   * closes. Survives reconnects. Messages lost while disconnected are lost: the canary accounts for them.
   * The subscription buffers what arrives in a bounded ring; it may say what it drops (DropReporting).
   */
  subscribe(channel: string, signal: AbortSignal): AsyncIterable<Delivery>;
  /** Connection state changes, as they happen, until close. Each call is a new independent stream. */
  status(): AsyncIterable<TransportStatus>;
  /** The current state. */
  readonly state: TransportStatus['type'];
  /** Closes everything. Idempotent. */
  close(): Promise<void>;
}

export interface PublishOptions {
  /** Default 5000 ms. */
  timeoutMs?: number;
}

export interface PublishReceipt {
  /** Wall-clock ns when the system acknowledged the message, where it acknowledges (confirms, acks, PubAck). */
  ackNs?: bigint;
}

export interface Delivery {
  payload: Uint8Array;
  /** Wall-clock ns when the message reached us. */
  receivedNs: bigint;
  /** Wall-clock ns the broker stamped on the message, where it stamps one (Kafka, Redis streams, JetStream). */
  brokerNs?: bigint;
}

export type TransportStatus =
  | { type: 'connecting' }
  | { type: 'connected' }
  | { type: 'disconnected'; error?: string }
  | { type: 'reconnecting'; attempt: number; delayMs: number; error?: string }
  | { type: 'closed' };

export type TransportErrorCode = 'not_connected' | 'timeout' | 'rejected' | 'too_large' | 'closed' | 'error';

/** A failure of the messaging system, as a value-like error with a code: the canary counts these by code. */
export class TransportError extends Error {
  constructor(
    readonly code: TransportErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TransportError';
  }
}

/** Options every transport factory gets besides its URL. */
export interface TransportOptions {
  /** Clock for receivedNs / ackNs stamps; wall-clock ns. */
  wallNs?: () => bigint;
  /** Name of this client, for brokers that show client names (and Kafka consumer groups). */
  clientName?: string;
  /** Reconnect backoff bounds. */
  reconnect?: { initialMs?: number; maxMs?: number };
}

/**
 * A subscription that says what its bounded buffer dropped (the reader fell behind): a coalminer counts
 * those pings as its own drops, never as loss in the broker. Every transport's subscription does.
 */
export interface DropReporting {
  readonly dropped: number;
  onDrop: ((d: Delivery) => void) | undefined;
}

export function reportsDrops(sub: AsyncIterable<Delivery>): sub is AsyncIterable<Delivery> & DropReporting {
  return typeof (sub as Partial<DropReporting>).dropped === 'number' && 'onDrop' in sub;
}
