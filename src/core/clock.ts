/** Clocks are injected so tests can control time; nothing reads the system clock directly. */
export interface Clock {
  /** Monotonic nanoseconds, for measuring durations. */
  nowNs(): bigint;
  /** Wall-clock milliseconds since the Unix epoch, for timestamps people read. */
  wallMs(): number;
}

export const systemClock: Clock = {
  nowNs: () => process.hrtime.bigint(),
  wallMs: () => Date.now(),
};

export const NS_PER_MS = 1_000_000n;
export const NS_PER_S = 1_000_000_000n;

export function nsToSeconds(ns: bigint): number {
  return Number(ns) / 1e9;
}

export function nsToMs(ns: bigint): number {
  return Number(ns) / 1e6;
}

export function msToNs(ms: number): bigint {
  return BigInt(Math.round(ms * 1e6));
}
