/**
 * NTP-style clock offset between a coalminer and a canary from request/response timestamps:
 * t1 coalminer sends, t2 canary receives, t3 canary replies, t4 coalminer receives (each on its own
 * clock). offset = ((t2 - t1) + (t3 - t4)) / 2 is the canary's clock minus ours; the sample with the
 * smallest round trip among the recent ones is the least disturbed by queueing, and its half round trip
 * bounds the error of its offset.
 */
export interface ClockEstimate {
  /** Canary clock minus local clock, ns. */
  readonly offsetNs: number;
  /** |true offset - offsetNs| is at most this, ns: half the best sample's round trip plus clock reading. */
  readonly errorNs: number;
  readonly rttNs: number;
  readonly samples: number;
}

/**
 * Each host reads its wall clock through Date.now() (whole milliseconds) anchored to the monotonic clock;
 * runs between two hosts on one machine showed the offset off by up to ~60 µs beyond rtt/2. The bound
 * includes this much for reading the clocks, so it stays a bound.
 */
export const CLOCK_READ_UNCERTAINTY_NS = 100_000;

export class ClockSync {
  private readonly samples: { offsetNs: number; rttNs: number }[] = [];
  /** The estimate until the next sample: a coalminer asks for it with every ping. */
  private current: ClockEstimate | undefined;

  constructor(private readonly keep = 16) {}

  add(t1: bigint, t2: bigint, t3: bigint, t4: bigint): void {
    const rtt = Number(t4 - t1 - (t3 - t2));
    if (!(rtt >= 0)) return; // clocks stepped mid-exchange, or garbage: ignore
    const offset = (Number(t2 - t1) + Number(t3 - t4)) / 2;
    this.samples.push({ offsetNs: offset, rttNs: rtt });
    if (this.samples.length > this.keep) this.samples.shift();
    this.current = undefined;
  }

  /** The same (frozen) object until the next sample is added. */
  estimate(): ClockEstimate | undefined {
    return (this.current ??= this.compute());
  }

  private compute(): ClockEstimate | undefined {
    if (this.samples.length === 0) return undefined;
    let best = this.samples[0]!;
    for (const s of this.samples) if (s.rttNs < best.rttNs) best = s;
    return Object.freeze({
      offsetNs: best.offsetNs,
      errorNs: best.rttNs / 2 + CLOCK_READ_UNCERTAINTY_NS,
      rttNs: best.rttNs,
      samples: this.samples.length,
    });
  }
}
