/** What the canary and coalminer report as they work; a metrics sink implements it. All optional. */
export interface CanaryObserver {
  sent?(coalminer: string): void;
  sendError?(coalminer: string, reason: string, count: number): void;
  publishAck?(coalminer: string, seconds: number): void;
  rtt?(coalminer: string, seconds: number): void;
}

export interface CoalminerObserver {
  /** One-way latency of a ping, from its intended and its actual send time, clock-corrected. */
  latency?(canary: string, fromIntendedSeconds: number, fromSentSeconds: number): void;
  foreign?(): void;
  /**
   * Where the broker stamps messages (Kafka, Redis streams, JetStream, the relay): the two legs of the
   * trip, canary to broker and broker to coalminer. Uncorrected for the broker's clock.
   */
  hops?(canary: string, toBrokerSeconds: number, fromBrokerSeconds: number): void;
  /** How a ping arrived: new, reordered, duplicate, late (after being declared lost) or stale. */
  arrival?(canary: string, kind: 'new' | 'reordered' | 'duplicate' | 'late' | 'stale'): void;
  /** Pings newly declared lost. */
  lost?(canary: string, count: number): void;
}
