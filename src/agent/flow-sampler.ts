import type { FlowRecord } from '../store/types.js';
import type { MessagingRuntime } from './messaging.js';

/**
 * Turns the coalminers' cumulative flow counts into per-interval records for the results store: the
 * deltas since the previous sample, the interval's latency histogram, and the in-flight gauge.
 */
export class FlowSampler {
  private readonly last = new Map<
    string,
    {
      received: number;
      lost: number;
      duplicated: number;
      reordered: number;
      late: number;
      sendFailed: number;
      droppedLocally: number;
    }
  >();
  private lastAt = Date.now();

  constructor(private readonly messaging: MessagingRuntime) {}

  sample(now = Date.now()): FlowRecord[] {
    const out: FlowRecord[] = [];
    const intervalMs = Math.max(1, now - this.lastAt);
    const seen = new Set<string>();
    for (const { c, transport, region } of this.messaging.coalminers) {
      for (const s of c.sampleFlows()) {
        const key = `${c.name}\u0000${s.canary}\u0000${s.runId}`;
        seen.add(key);
        const prev = this.last.get(key) ?? {
          received: 0,
          lost: 0,
          duplicated: 0,
          reordered: 0,
          late: 0,
          sendFailed: 0,
          droppedLocally: 0,
        };
        const cur = s.counts;
        // `lost` can fall when a late ping is taken back; the store keeps declared losses and late ones.
        const lost = cur.lost + cur.late;
        const record: FlowRecord = {
          time: this.lastAt,
          intervalMs,
          canary: s.canary,
          coalminer: c.name,
          transport,
          region,
          runId: s.runId,
          received: cur.received - prev.received,
          lost: Math.max(0, lost - prev.lost),
          duplicated: cur.duplicated - prev.duplicated,
          reordered: cur.reordered - prev.reordered,
          late: cur.late - prev.late,
          sendFailed: Math.max(0, cur.sendFailed - prev.sendFailed),
          inFlight: cur.inFlight,
          // Falls when a ping taken for dropped arrives after all; counted from the highest total seen,
          // so the stored sum never exceeds the coalminer's count.
          droppedLocally: Math.max(0, cur.droppedLocally - prev.droppedLocally),
          latency: s.latency.toJSON(),
        };
        this.last.set(key, {
          received: cur.received,
          lost,
          duplicated: cur.duplicated,
          reordered: cur.reordered,
          late: cur.late,
          sendFailed: cur.sendFailed,
          droppedLocally: Math.max(prev.droppedLocally, cur.droppedLocally),
        });
        if (
          record.received +
            record.lost +
            record.duplicated +
            record.sendFailed +
            record.inFlight +
            record.droppedLocally >
          0
        )
          out.push(record);
      }
    }
    for (const key of this.last.keys()) if (!seen.has(key)) this.last.delete(key);
    this.lastAt = now;
    return out;
  }
}
