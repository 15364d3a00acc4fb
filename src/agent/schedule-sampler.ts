import { PRUNED, type Canary } from '../messaging/canary.js';
import type { ScheduleRecord } from '../store/types.js';

/** The canaries this agent runs, and the transport kind of each (what the sampler reads). */
export interface ScheduleSource {
  readonly canaries: readonly Pick<Canary, 'name' | 'stats'>[];
  transportOf(canary: string): string;
}

/**
 * Turns the local canaries' cumulative schedules (Canary.stats(): due, attempted, behind) into
 * per-interval records for the results store, beside FlowSampler: the due and attempted deltas since the
 * previous sample and the behind-schedule gauges as they are now. A flow that ended is written once more
 * with its final gauge and then no longer, so the store shows when a canary fell behind and for how long.
 */
export class ScheduleSampler {
  private readonly last = new Map<
    string,
    { due: number; attempted: number; behind: number; runId: string }
  >();
  private lastAt: number;

  constructor(
    private readonly source: ScheduleSource,
    nowMs = Date.now(),
  ) {
    this.lastAt = nowMs;
  }

  sample(now = Date.now()): ScheduleRecord[] {
    const out: ScheduleRecord[] = [];
    const intervalMs = Math.max(1, now - this.lastAt);
    const seen = new Set<string>();
    for (const canary of this.source.canaries) {
      const transport = this.source.transportOf(canary.name);
      for (const [coalminer, s] of canary.stats()) {
        // The sum of long-retired coalminers: their counts were recorded under their own names already.
        if (coalminer === PRUNED) continue;
        const key = `${canary.name}\u0000${coalminer}`;
        seen.add(key);
        let prev = this.last.get(key) ?? { due: 0, attempted: 0, behind: 0, runId: s.runId };
        // A canary started again under the same name counts from zero under a new run id: its pings since
        // are new, not a fall of the old totals. (Pinging a coalminer again keeps counting from the totals.)
        if (s.runId !== prev.runId && (s.due < prev.due || s.attempted < prev.attempted))
          prev = { due: 0, attempted: 0, behind: prev.behind, runId: s.runId };
        const record: ScheduleRecord = {
          time: this.lastAt,
          intervalMs,
          canary: canary.name,
          coalminer,
          transport,
          runId: s.runId,
          due: Math.max(0, s.due - prev.due),
          attempted: Math.max(0, s.attempted - prev.attempted),
          behind: s.behind,
          behindSeconds: s.behindSeconds,
        };
        this.last.set(key, {
          due: Math.max(prev.due, s.due),
          attempted: Math.max(prev.attempted, s.attempted),
          behind: s.behind,
          runId: s.runId,
        });
        // A retired flow keeps its final gauge for good: write it while it changes, not every interval.
        if (record.due > 0 || record.attempted > 0 || record.behind !== prev.behind) out.push(record);
      }
    }
    for (const key of this.last.keys()) if (!seen.has(key)) this.last.delete(key);
    this.lastAt = now;
    return out;
  }
}
