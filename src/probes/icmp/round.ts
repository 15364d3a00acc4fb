import { nsToSeconds } from '../../core/clock.js';

/** Bound on the ICMP errors kept for `detail`; the rest are only counted. */
const MAX_ERRORS_KEPT = 10;

interface EchoRequest {
  txRealNs: bigint;
  sentMonoNs: bigint;
  state: 'waiting' | 'replied' | 'late' | 'error';
  rttNs?: bigint;
}

export interface IcmpErrorReport {
  from: string;
  type: number;
  code: number;
  seq: number;
  message: string;
}

export interface RoundSummary {
  sent: number;
  received: number;
  lost: number;
  inFlight: number;
  duplicates: number;
  late: number;
  corrupted: number;
  foreign: number;
  /** Round-trip times of the replies received, in send order. */
  rttsNs: bigint[];
  /** One entry per request sent, in ms, null when no reply came (as `fping -C`). */
  rttsMs: (number | null)[];
  hopLimit?: number;
  errors: IcmpErrorReport[];
  errorCount: number;
}

/**
 * The bookkeeping of one round of echo requests: which sequence numbers went out when, which came
 * back, and what arrived that should not have. RTTs are kernel receive time minus the time read
 * right before sendto, both CLOCK_REALTIME, so event-loop delay is not part of them.
 */
export class EchoRound {
  private readonly requests = new Map<number, EchoRequest>();
  private duplicates = 0;
  private late = 0;
  private corrupted = 0;
  private foreign = 0;
  private hopLimit: number | undefined;
  private readonly errors: IcmpErrorReport[] = [];
  private errorCount = 0;
  /** Called after every packet that changed the round, so a waiting loop can re-check. */
  onChange: (() => void) | undefined;

  constructor(
    private readonly family: 4 | 6,
    private readonly id: number,
    private readonly payload: Buffer,
    private readonly replyTimeoutNs: bigint | undefined,
  ) {}

  recordSent(seq: number, txRealNs: bigint, sentMonoNs: bigint): void {
    this.requests.set(seq, { txRealNs, sentMonoNs, state: 'waiting' });
  }

  readonly onPacket = (
    source: string,
    type: number,
    code: number,
    id: number,
    seq: number,
    payload: Buffer | null,
    rxNs: bigint,
    hopLimit: number,
  ): void => {
    const req = id === this.id ? this.requests.get(seq) : undefined;
    if (!req) {
      this.foreign++;
      return;
    }
    if (type === (this.family === 4 ? 0 : 129)) {
      if (!payload || !payload.equals(this.payload)) {
        this.corrupted++;
        return;
      }
      if (req.state === 'replied' || req.state === 'late') {
        this.duplicates++;
        return;
      }
      const rtt = rxNs - req.txRealNs;
      req.rttNs = rtt < 0n ? 0n : rtt; // only if the wall clock stepped back between send and receive
      req.state = this.replyTimeoutNs !== undefined && rtt > this.replyTimeoutNs ? 'late' : 'replied';
      if (req.state === 'late') this.late++;
      if (hopLimit >= 0) this.hopLimit = hopLimit;
    } else {
      this.errorCount++;
      if (this.errors.length < MAX_ERRORS_KEPT) {
        this.errors.push({
          from: source,
          type,
          code,
          seq,
          message: describeIcmpError(this.family, type, code),
        });
      }
      if (req.state === 'waiting') req.state = 'error';
    }
    this.onChange?.();
  };

  /** Requests still worth waiting for at monotonic time `nowNs`. */
  waiting(nowNs: bigint): number {
    let n = 0;
    for (const r of this.requests.values()) if (r.state === 'waiting' && !this.expired(r, nowNs)) n++;
    return n;
  }

  /** When the next waiting request's reply timeout ends, if there is a reply timeout. */
  nextExpiryNs(nowNs: bigint): bigint | undefined {
    if (this.replyTimeoutNs === undefined) return undefined;
    let next: bigint | undefined;
    for (const r of this.requests.values()) {
      if (r.state !== 'waiting' || this.expired(r, nowNs)) continue;
      const at = r.sentMonoNs + this.replyTimeoutNs;
      if (next === undefined || at < next) next = at;
    }
    return next;
  }

  /**
   * Unanswered requests count as lost once their reply timeout is over, or when the round ran to its
   * deadline; `interrupted` (the run was cancelled) leaves the others in flight, never lost.
   */
  summary(nowNs: bigint, interrupted: boolean): RoundSummary {
    let received = 0;
    let lost = 0;
    let inFlight = 0;
    const rttsNs: bigint[] = [];
    const rttsMs: (number | null)[] = [];
    for (const r of [...this.requests.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1])) {
      if (r.state === 'replied' && r.rttNs !== undefined) {
        received++;
        rttsNs.push(r.rttNs);
        rttsMs.push(Number(r.rttNs) / 1e6);
        continue;
      }
      rttsMs.push(null);
      if (r.state === 'waiting' && interrupted && !this.expired(r, nowNs)) inFlight++;
      else lost++;
    }
    return {
      sent: this.requests.size,
      received,
      lost,
      inFlight,
      duplicates: this.duplicates,
      late: this.late,
      corrupted: this.corrupted,
      foreign: this.foreign,
      rttsNs,
      rttsMs,
      ...(this.hopLimit !== undefined ? { hopLimit: this.hopLimit } : {}),
      errors: this.errors,
      errorCount: this.errorCount,
    };
  }

  private expired(r: EchoRequest, nowNs: bigint): boolean {
    return this.replyTimeoutNs !== undefined && nowNs - r.sentMonoNs >= this.replyTimeoutNs;
  }
}

export interface RttStats {
  minNs: bigint;
  maxNs: bigint;
  medianNs: bigint;
  meanSeconds: number;
  /** Population standard deviation (ping's mdev). */
  stddevSeconds: number;
  /** Mean absolute difference between consecutive replies' RTTs, in send order (RFC 3550's D, unsmoothed). */
  jitterSeconds: number;
}

/** Statistics of one round's RTTs, given in send order. */
export function rttStats(rtts: readonly bigint[]): RttStats | undefined {
  if (rtts.length === 0) return undefined;
  let jitter = 0;
  for (let i = 1; i < rtts.length; i++) jitter += Math.abs(nsToSeconds(rtts[i]! - rtts[i - 1]!));
  const sorted = [...rtts].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const mid = sorted.length >> 1;
  const medianNs = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2n;
  const secs = sorted.map(nsToSeconds);
  const mean = secs.reduce((a, b) => a + b, 0) / secs.length;
  const variance = secs.reduce((a, b) => a + (b - mean) ** 2, 0) / secs.length;
  return {
    minNs: sorted[0]!,
    maxNs: sorted[sorted.length - 1]!,
    medianNs,
    meanSeconds: mean,
    stddevSeconds: Math.sqrt(variance),
    jitterSeconds: rtts.length > 1 ? jitter / (rtts.length - 1) : 0,
  };
}

const V4_UNREACH: Record<number, string> = {
  0: 'network unreachable',
  1: 'host unreachable',
  2: 'protocol unreachable',
  3: 'port unreachable',
  4: 'fragmentation needed but DF set',
  5: 'source route failed',
  6: 'destination network unknown',
  7: 'destination host unknown',
  9: 'network administratively prohibited',
  10: 'host administratively prohibited',
  13: 'communication administratively prohibited',
};
const V6_UNREACH: Record<number, string> = {
  0: 'no route to destination',
  1: 'communication administratively prohibited',
  2: 'beyond scope of source address',
  3: 'address unreachable',
  4: 'port unreachable',
  5: 'source address failed ingress/egress policy',
  6: 'reject route to destination',
};

/** The words ping uses for an ICMP error type and code. */
export function describeIcmpError(family: 4 | 6, type: number, code: number): string {
  if (family === 4) {
    if (type === 3) return `destination ${V4_UNREACH[code] ?? `unreachable (code ${code})`}`;
    if (type === 11) return code === 0 ? 'time to live exceeded' : 'fragment reassembly time exceeded';
    if (type === 12) return 'parameter problem';
    if (type === 4) return 'source quench';
  } else {
    if (type === 1) return `destination ${V6_UNREACH[code] ?? `unreachable (code ${code})`}`;
    if (type === 2) return 'packet too big';
    if (type === 3) return code === 0 ? 'hop limit exceeded' : 'fragment reassembly time exceeded';
    if (type === 4) return 'parameter problem';
  }
  return `ICMP type ${type} code ${code}`;
}
