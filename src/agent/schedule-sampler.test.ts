import { describe, expect, it } from 'vitest';
import { PRUNED, type FlowStats } from '../messaging/canary.js';
import type { ScheduleRecord } from '../store/types.js';
import { ScheduleSampler, type ScheduleSource } from './schedule-sampler.js';

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

function stats(s: Partial<FlowStats> & Pick<FlowStats, 'due' | 'attempted'>): FlowStats {
  return {
    behind: s.due - s.attempted,
    behindSeconds: 0,
    sent: s.attempted,
    failed: 0,
    pending: 0,
    errors: {},
    runId: 'a1',
    runs: 1,
    ...s,
  };
}

/** A canary whose cumulative stats() a test sets between samples. */
class FakeCanary {
  current = new Map<string, FlowStats>();
  constructor(readonly name: string) {}
  stats(): Map<string, FlowStats> {
    return new Map([...this.current].map(([k, v]) => [k, { ...v }]));
  }
}

function setup() {
  const canary = new FakeCanary('canary-us');
  const source: ScheduleSource & { canaries: FakeCanary[] } = {
    canaries: [canary],
    transportOf: () => 'redis',
  };
  return { canary, source, sampler: new ScheduleSampler(source, T0) };
}

describe('ScheduleSampler', () => {
  it('records the due and attempted deltas per interval and the behind gauges as they are', () => {
    const { canary, sampler } = setup();
    canary.current.set('eu-west', stats({ due: 100, attempted: 100 }));
    expect(sampler.sample(T0 + 10_000)).toEqual([
      {
        time: T0,
        intervalMs: 10_000,
        canary: 'canary-us',
        coalminer: 'eu-west',
        transport: 'redis',
        runId: 'a1',
        due: 100,
        attempted: 100,
        behind: 0,
        behindSeconds: 0,
      },
    ]);
    // The canary falls 30 pings (3 s) behind.
    canary.current.set('eu-west', stats({ due: 200, attempted: 170, behindSeconds: 3 }));
    expect(sampler.sample(T0 + 20_000)).toMatchObject([
      { time: T0 + 10_000, intervalMs: 10_000, due: 100, attempted: 70, behind: 30, behindSeconds: 3 },
    ]);
    // It catches up: more attempted than fell due in this interval.
    canary.current.set('eu-west', stats({ due: 300, attempted: 300 }));
    expect(sampler.sample(T0 + 30_000)).toMatchObject([
      { time: T0 + 20_000, due: 100, attempted: 130, behind: 0, behindSeconds: 0 },
    ]);
  });

  it('sums to the canary totals: due = attempted + behind over the samples', () => {
    const { canary, sampler } = setup();
    let due = 0;
    let attempted = 0;
    const rows: ScheduleRecord[] = [];
    for (let k = 1; k <= 20; k++) {
      due += 50;
      attempted = Math.min(due, attempted + (k % 4 === 0 ? 10 : 60));
      canary.current.set('eu-west', stats({ due, attempted }));
      rows.push(...sampler.sample(T0 + k * 1000));
    }
    const sum = (f: (r: ScheduleRecord) => number) => rows.reduce((n, r) => n + f(r), 0);
    expect(sum((r) => r.due)).toBe(due);
    expect(sum((r) => r.attempted)).toBe(attempted);
    expect(rows.at(-1)!.behind).toBe(due - attempted);
  });

  it('writes an idle flow only while its gauge changes, and skips the pruned sum', () => {
    const { canary, sampler } = setup();
    canary.current.set('eu-west', stats({ due: 10, attempted: 8, behindSeconds: 0.2 }));
    canary.current.set(PRUNED, stats({ due: 5000, attempted: 5000, runId: '' }));
    expect(sampler.sample(T0 + 1000).map((r) => r.coalminer)).toEqual(['eu-west']);
    // Nothing moved: nothing written. Then the two behind are attempted.
    expect(sampler.sample(T0 + 2000)).toEqual([]);
    canary.current.set('eu-west', stats({ due: 10, attempted: 10 }));
    expect(sampler.sample(T0 + 3000)).toMatchObject([{ due: 0, attempted: 2, behind: 0 }]);
  });

  it('never writes a negative delta when a total falls within a run', () => {
    const { canary, sampler } = setup();
    canary.current.set('eu-west', stats({ due: 100, attempted: 100 }));
    sampler.sample(T0 + 1000);
    canary.current.set('eu-west', stats({ due: 95, attempted: 90 }));
    const [r] = sampler.sample(T0 + 2000);
    expect(r).toMatchObject({ due: 0, attempted: 0, behind: 5 });
    // Counted from the highest totals seen, so nothing is counted twice when they rise again.
    canary.current.set('eu-west', stats({ due: 110, attempted: 110 }));
    expect(sampler.sample(T0 + 3000)).toMatchObject([{ due: 10, attempted: 10, behind: 0 }]);
  });

  it('a coalminer pinged again (a new run of the same canary) goes on from the totals', () => {
    const { canary, sampler } = setup();
    canary.current.set('eu-west', stats({ due: 100, attempted: 100 }));
    sampler.sample(T0 + 1000);
    canary.current.set('eu-west', stats({ due: 130, attempted: 130, runId: 'b2', runs: 2 }));
    expect(sampler.sample(T0 + 2000)).toMatchObject([{ runId: 'b2', due: 30, attempted: 30 }]);
  });

  it('a canary started again under the same name counts its new pings from zero', () => {
    const { source, sampler } = setup();
    source.canaries[0]!.current.set('eu-west', stats({ due: 1000, attempted: 990 }));
    sampler.sample(T0 + 1000);
    const again = new FakeCanary('canary-us');
    again.current.set('eu-west', stats({ due: 40, attempted: 36, runId: 'c3' }));
    source.canaries[0] = again;
    expect(sampler.sample(T0 + 2000)).toMatchObject([{ runId: 'c3', due: 40, attempted: 36, behind: 4 }]);
    again.current.set('eu-west', stats({ due: 100, attempted: 100, runId: 'c3' }));
    expect(sampler.sample(T0 + 3000)).toMatchObject([{ due: 60, attempted: 64, behind: 0 }]);
  });
});
