import { availableParallelism } from 'node:os';
import { probes, type ProbeKind } from '../registry.js';

/** `probes.workers` in the config: `auto`, or how many worker threads (0: none). */
export type ProbeWorkersSetting = number | 'auto';

export const MAX_PROBE_WORKERS = 64;

/**
 * `auto` starts worker threads only above this many probes a second. Below it one event loop keeps up
 * with room to spare (bench/README.md: idle 54% at 5,262 probes/s), and a thread costs memory (its own
 * V8 heap and modules, 15-25 MB) that a small agent cannot spare: one with 200 HTTP targets at 1 s is
 * held under 80 MB RSS.
 */
export const AUTO_WORKERS_MIN_RATE = 2000;
/** `auto` starts one worker per this many probes a second (up to one less than the CPUs). */
export const PROBES_PER_AUTO_WORKER = 4000;
/**
 * ... and only with at least this many CPUs (os.availableParallelism()). On 2 shared cores a worker cost
 * 1.26-1.40x the CPU a probe and did not raise the probes a second that the agent kept (bench/scale.mjs
 * --workers, bench/README.md), though the main thread's loop blocks and scrapes shrank; whether 4 or
 * more cores gain is not measured here. `probes.workers: 1` asks for one on any machine.
 */
export const AUTO_WORKERS_MIN_CPUS = 4;

/** A target with every default applied (config's TargetConfig): what the scheduler and probes get. */
export interface ProbeTarget {
  name: string;
  kind: ProbeKind;
  target: string;
  intervalMs: number;
  timeoutMs: number;
  /** The kind's own options, validated by its schema. */
  options: Record<string, unknown>;
}

export interface ProbeWorkerPlan {
  /** Worker threads to start; 0: every probe runs on the main thread. */
  count: number;
  /** Why, in words for the log (`probes.workers auto: 5,000 probes/s above 2,000, 2 CPUs`). */
  reason: string;
  /** Targets the workers run, by worker: indexes into the targets given. */
  shards: number[][];
  /** Kinds of the config that stay on the main thread, with why (ProbeDefinition.mainThreadOnly). */
  onMain: { kind: ProbeKind; targets: number; why: string }[];
}

const rate = (t: { intervalMs: number }) => 1000 / t.intervalMs;
/**
 * 5,000 from 5000. Not toLocaleString: the first Intl call makes ICU's data resident, about 6 MB of RSS
 * an agent would hold for one log line.
 */
const fmt = (n: number) => String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** Why a kind cannot run in a worker thread, or undefined when it can. */
export function mainThreadOnly(kind: ProbeKind): string | undefined {
  return probes[kind].mainThreadOnly;
}

/**
 * How many worker threads the agent starts for its targets and which runs where. `parallelism` is
 * os.availableParallelism() (passed in so tests choose it).
 */
export function planProbeWorkers(
  setting: ProbeWorkersSetting,
  targets: readonly ProbeTarget[],
  parallelism: number,
  onMainThread: (kind: ProbeKind) => string | undefined = mainThreadOnly,
): ProbeWorkerPlan {
  const eligible: number[] = [];
  const onMain = new Map<ProbeKind, { kind: ProbeKind; targets: number; why: string }>();
  targets.forEach((t, i) => {
    const why = onMainThread(t.kind);
    if (why === undefined) eligible.push(i);
    else {
      const entry = onMain.get(t.kind) ?? { kind: t.kind, targets: 0, why };
      entry.targets++;
      onMain.set(t.kind, entry);
    }
  });
  const perSecond = eligible.reduce((sum, i) => sum + rate(targets[i]!), 0);
  let count: number;
  let reason: string;
  if (setting === 'auto') {
    if (perSecond <= AUTO_WORKERS_MIN_RATE) {
      count = 0;
      reason = `probes.workers auto: ${fmt(perSecond)} probes/s is at most ${fmt(AUTO_WORKERS_MIN_RATE)}, one thread does`;
    } else if (parallelism < AUTO_WORKERS_MIN_CPUS) {
      count = 0;
      reason = `probes.workers auto: ${fmt(perSecond)} probes/s, but ${parallelism} CPU${parallelism === 1 ? '' : 's'}; threads start from ${AUTO_WORKERS_MIN_CPUS}, as on 2 they cost more CPU a probe for no gain; probes.workers: 1 starts one`;
    } else {
      count = Math.min(parallelism - 1, Math.ceil(perSecond / PROBES_PER_AUTO_WORKER));
      reason = `probes.workers auto: ${fmt(perSecond)} probes/s is above ${fmt(AUTO_WORKERS_MIN_RATE)}, ${parallelism} CPUs: one worker per ${fmt(PROBES_PER_AUTO_WORKER)} probes/s, at most one less than the CPUs`;
    }
  } else {
    count = setting;
    reason = `probes.workers is ${setting}`;
  }
  count = Math.min(count, eligible.length);
  return {
    count,
    reason,
    shards: count > 0 ? shardByRate(targets, eligible, count) : [],
    onMain: [...onMain.values()],
  };
}

/**
 * Shares the targets out so each worker has about the same probes a second: the busiest target first,
 * each to the worker with the least so far (longest-processing-time first). The same config gives the
 * same shards on every start.
 */
export function shardByRate(
  targets: readonly ProbeTarget[],
  indexes: readonly number[],
  count: number,
): number[][] {
  const order = [...indexes].sort((a, b) => rate(targets[b]!) - rate(targets[a]!) || a - b);
  const shards = Array.from({ length: count }, () => ({ load: 0, targets: [] as number[] }));
  for (const i of order) {
    let least = shards[0]!;
    for (const s of shards) if (s.load < least.load) least = s;
    least.load += rate(targets[i]!);
    least.targets.push(i);
  }
  return shards.map((s) => s.targets.sort((a, b) => a - b));
}

/** One phrase for `config check`: how many worker threads this machine would start, and why. */
export function describeProbeWorkers(
  setting: ProbeWorkersSetting | undefined,
  targets: readonly ProbeTarget[],
  parallelism: number = availableParallelism(),
): string {
  const plan = planProbeWorkers(setting ?? 'auto', targets, parallelism);
  const where =
    plan.count === 0
      ? 'probes on the main thread'
      : `probes in ${plan.count} worker thread${plan.count === 1 ? '' : 's'}`;
  const main =
    plan.count > 0 ? plan.onMain.map((m) => `; ${m.kind} on the main thread: ${m.why}`).join('') : '';
  return `${where} (${plan.reason}${main})`;
}
