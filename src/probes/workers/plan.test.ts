import { describe, expect, it } from 'vitest';
import { describeProbeWorkers, planProbeWorkers, shardByRate, type ProbeTarget } from './plan.js';

const targets = (n: number, intervalMs: number, kind: ProbeTarget['kind'] = 'tcp'): ProbeTarget[] =>
  Array.from({ length: n }, (_, i) => ({
    name: `${kind}-${intervalMs}-${i}`,
    kind,
    target: '127.0.0.1:1',
    intervalMs,
    timeoutMs: 100,
    options: {},
  }));

describe('planProbeWorkers', () => {
  it('starts no thread under auto for a small agent, whatever the CPUs', () => {
    // 200 HTTP targets at 1 s: the agent that is held under 80 MB RSS.
    const plan = planProbeWorkers('auto', targets(200, 1000, 'http'), 64);
    expect(plan.count).toBe(0);
    expect(plan.reason).toBe('probes.workers auto: 200 probes/s is at most 2,000, one thread does');
    expect(planProbeWorkers('auto', targets(2000, 1000), 64).count).toBe(0);
  });

  it('starts one thread per 4,000 probes/s above 2,000 under auto from 4 CPUs, at most CPUs - 1', () => {
    expect(planProbeWorkers('auto', targets(10_000, 2000), 4).count).toBe(2);
    expect(planProbeWorkers('auto', targets(10_000, 2000), 8).count).toBe(2);
    expect(planProbeWorkers('auto', targets(20_000, 1000), 8).count).toBe(5);
    expect(planProbeWorkers('auto', targets(20_000, 1000), 4).count).toBe(3);
    for (const cpus of [1, 2, 3]) {
      const few = planProbeWorkers('auto', targets(10_000, 2000), cpus);
      expect(few.count).toBe(0);
      expect(few.reason).toMatch(/threads start from 4/);
    }
  });

  it('takes a number as it is, never more threads than targets', () => {
    expect(planProbeWorkers(0, targets(50_000, 1000), 8).count).toBe(0);
    expect(planProbeWorkers(3, targets(10, 1000), 1)).toMatchObject({
      count: 3,
      reason: 'probes.workers is 3',
    });
    expect(planProbeWorkers(3, targets(2, 1000), 8).count).toBe(2);
  });

  it('keeps kinds that cannot run in a worker on the main thread, and says why', () => {
    const list = [...targets(3000, 1000, 'tcp'), ...targets(5, 1000, 'icmp')];
    const plan = planProbeWorkers('auto', list, 4, (kind) =>
      kind === 'icmp' ? 'not worker-safe' : undefined,
    );
    expect(plan.onMain).toEqual([{ kind: 'icmp', targets: 5, why: 'not worker-safe' }]);
    expect(plan.shards.flat().every((i) => list[i]!.kind === 'tcp')).toBe(true);
    expect(plan.shards.flat().length).toBe(3000);
  });
});

describe('describeProbeWorkers', () => {
  it('says in config check what this machine would start, and why', () => {
    expect(describeProbeWorkers(undefined, targets(200, 1000, 'http'), 8)).toBe(
      'probes on the main thread (probes.workers auto: 200 probes/s is at most 2,000, one thread does)',
    );
    expect(describeProbeWorkers(1, targets(10, 1000), 2)).toBe(
      'probes in 1 worker thread (probes.workers is 1)',
    );
    expect(describeProbeWorkers('auto', targets(10_000, 1000), 2)).toBe(
      'probes on the main thread (probes.workers auto: 10,000 probes/s, but 2 CPUs; threads start from 4, as on 2 they cost more CPU a probe for no gain; probes.workers: 1 starts one)',
    );
  });
});

describe('shardByRate', () => {
  it('gives each worker about the same probes a second and every target once', () => {
    const list = [...targets(100, 100), ...targets(1000, 10_000), ...targets(7, 1000)];
    const shards = shardByRate(
      list,
      list.map((_, i) => i),
      3,
    );
    expect(shards.flat().sort((a, b) => a - b)).toEqual(list.map((_, i) => i));
    const loads = shards.map((s) => s.reduce((sum, i) => sum + 1000 / list[i]!.intervalMs, 0));
    // 1,107 probes/s in all: no worker more than one busy target (10/s) off the mean.
    for (const l of loads) expect(Math.abs(l - 1107 / 3)).toBeLessThanOrEqual(10);
    expect(
      shardByRate(
        list,
        list.map((_, i) => i),
        3,
      ),
    ).toEqual(shards);
  });
});
