import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { lazyBuiltin } from '../../core/builtin.js';
import type { Logger } from '../../core/log.js';
import type { SchedulerEvents } from '../../core/scheduler.js';
import type { Observation } from '../../core/types.js';
import { planProbeWorkers, type ProbeTarget, type ProbeWorkersSetting } from './plan.js';
import { SKIP_REASONS, type FromWorker, type ToWorker, type WorkerInit } from './protocol.js';

/** Loaded when the first worker starts: an agent without probe workers does not hold the module. */
const workerThreads = lazyBuiltin<typeof import('node:worker_threads')>('node:worker_threads');

/** Where a pool's results and scheduler events go: the agent's observation path and its counters. */
export interface ProbeWorkerSink extends Required<SchedulerEvents> {
  /** Every run a worker finished, as the main thread's own runs are observed. Must not throw. */
  observe(o: Observation): void;
}

export interface ProbeWorkerPoolOptions {
  log?: Logger;
  /** A batch leaves a worker this long after its first entry at the latest. Default 20 ms. */
  batchMs?: number;
  /** ... or once it holds this many runs and events. Default 256: a batch is a few ms of work. */
  maxBatch?: number;
  /** First wait before a crashed worker is started again; doubles while it keeps crashing. Default 1 s. */
  restartDelayMs?: number;
  /** How long close() waits for a worker's last batch before it terminates it. Default 2 s. */
  stopGraceMs?: number;
  /** Told each worker thread as it starts (tests, benches). */
  onWorker?: (index: number, worker: Worker) => void;
}

/** process.hrtime in ms: the monotonic clock every thread of the process reads alike. */
const monoMs = () => Number(process.hrtime.bigint()) / 1e6;

/** A worker that ran this long before it stopped is restarted after the first delay again. */
const STABLE_MS = 60_000;
const MAX_RESTART_DELAY_MS = 30_000;

interface Slot {
  index: number;
  targets: ProbeTarget[];
  worker: Worker | undefined;
  startedAt: number;
  lastError: Error | undefined;
  delayMs: number;
  restartTimer: NodeJS.Timeout | undefined;
  checks: Map<number, { name: string; resolve: () => void; reject: (err: Error) => void }>;
  /** Resolves when its thread has exited (undefined: no thread). */
  exited: Promise<void> | undefined;
  /** When its thread stopped without being told to (monoMs()); 0: never. */
  downSince: number;
}

/**
 * The compiled worker script beside this module: dist/probes/workers/ from tsc's output, dist/bundle/
 * from the bundle (scripts/bundle.mjs makes probe-worker.js an entry of its own). Under vitest this
 * module is TypeScript source, which a worker thread cannot load: then the build's copy in dist/.
 */
export function probeWorkerScript(): URL {
  const here = new URL('./probe-worker.js', import.meta.url);
  if (!import.meta.url.endsWith('.ts')) return here;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  const built = join(dir, 'dist/probes/workers/probe-worker.js');
  if (!existsSync(built))
    throw new Error(`${built} is missing: run npm run build (probe workers run the build)`);
  return pathToFileURL(built);
}

/**
 * Runs targets in worker threads, a shard of them in each, so an agent uses more than one core for its
 * probes. Each worker runs the scheduler and the probes for its shard and sends results and scheduler
 * events back in batches; they are handed to `sink` as the main thread's own runs are, so metrics,
 * store, alerts, API and dashboard see the same observations. A worker that stops without being told
 * to is logged and started again with the same targets.
 */
export class ProbeWorkerPool {
  private readonly slots: Slot[];
  private readonly owner = new Map<string, { slot: Slot; index: number }>();
  private readonly script: URL;
  private nextCheck = 0;
  private closing: Promise<void> | undefined;
  private restarts = 0;
  private originMs: number | undefined;

  constructor(
    shards: readonly (readonly ProbeTarget[])[],
    private readonly sink: ProbeWorkerSink,
    private readonly opts: ProbeWorkerPoolOptions = {},
  ) {
    this.script = probeWorkerScript();
    this.slots = shards.map((targets, index) => ({
      index,
      targets: [...targets],
      worker: undefined,
      startedAt: 0,
      lastError: undefined,
      delayMs: opts.restartDelayMs ?? 1000,
      restartTimer: undefined,
      checks: new Map(),
      exited: undefined,
      downSince: 0,
    }));
    for (const slot of this.slots)
      slot.targets.forEach((t, index) => {
        if (this.owner.has(t.name)) throw new Error(`target ${t.name} is in two probe worker shards`);
        this.owner.set(t.name, { slot, index });
      });
  }

  /** How many worker threads, and how often one was restarted after it stopped on its own. */
  stats(): { workers: number; targets: number; restarts: number } {
    return { workers: this.slots.length, targets: this.owner.size, restarts: this.restarts };
  }

  owns(name: string): boolean {
    return this.owner.has(name);
  }

  start(): void {
    if (this.closing) return;
    this.originMs ??= monoMs();
    for (const slot of this.slots) if (!slot.worker) this.spawn(slot);
  }

  /** Runs a target now in its worker; resolves once its result has been given to the sink. */
  runNow(name: string): Promise<void> {
    const o = this.owner.get(name);
    if (!o) return Promise.reject(new Error(`no target ${name} in the probe workers`));
    const w = o.slot.worker;
    if (!w || this.closing)
      return Promise.reject(
        new Error(
          this.closing
            ? `target ${name}: the agent is stopping`
            : `target ${name}: its probe worker is restarting after it stopped; try again in a few seconds`,
        ),
      );
    const id = this.nextCheck++;
    return new Promise<void>((resolve, reject) => {
      o.slot.checks.set(id, { name, resolve, reject });
      w.postMessage({ type: 'check', id, target: o.index } satisfies ToWorker);
    });
  }

  /**
   * Stops every worker: each stops scheduling and sends what it has measured (given to the sink before
   * this resolves), then its thread is terminated, runs still in flight with it. Idempotent.
   */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      await Promise.all(
        this.slots.map(async (slot) => {
          if (slot.restartTimer) clearTimeout(slot.restartTimer);
          slot.restartTimer = undefined;
          const w = slot.worker;
          if (!w) return;
          const stopped = new Promise<void>((resolve) => {
            const grace = setTimeout(resolve, this.opts.stopGraceMs ?? 2000);
            const done = () => {
              clearTimeout(grace);
              resolve();
            };
            w.on('message', (m: FromWorker) => m.type === 'stopped' && done());
            void slot.exited?.then(done);
          });
          w.postMessage({ type: 'stop' } satisfies ToWorker);
          await stopped;
          await w.terminate();
          await slot.exited;
        }),
      );
    })());
  }

  private spawn(slot: Slot): void {
    const init: WorkerInit = {
      targets: slot.targets,
      originMs: (this.originMs ??= monoMs()),
      // The restarted thread's scheduler counts the slots it was down for as skipped (stalled).
      ...(slot.downSince > 0 && { notBeforeMs: slot.downSince }),
      batchMs: this.opts.batchMs ?? 20,
      maxBatch: this.opts.maxBatch ?? 256,
    };
    const w = new (workerThreads().Worker)(this.script, {
      workerData: init,
      name: `coalmine probes ${slot.index}`,
    });
    slot.worker = w;
    slot.startedAt = Date.now();
    slot.lastError = undefined;
    w.on('message', (m: FromWorker) => this.received(slot, m));
    w.on('error', (err) => (slot.lastError = err));
    slot.exited = new Promise((resolve) => w.once('exit', (code) => resolve(this.exited(slot, w, code))));
    this.opts.onWorker?.(slot.index, w);
  }

  private received(slot: Slot, m: FromWorker): void {
    switch (m.type) {
      case 'batch': {
        const targets = slot.targets;
        for (let k = 0; k < m.late.length; k += 2)
          this.sink.lateness(targets[m.late[k]!]!.name, m.late[k + 1]!);
        for (let k = 0; k < m.skipped.length; k += 2)
          this.sink.skipped(targets[m.skipped[k]!]!.name, SKIP_REASONS[m.skipped[k + 1]!]!);
        for (const r of m.runs) {
          const t = targets[r.target]!;
          this.sink.observe({
            name: t.name,
            kind: t.kind,
            target: t.target,
            startedAtMs: r.startedAtMs,
            result: r.result,
          });
        }
        return;
      }
      case 'checked': {
        const c = slot.checks.get(m.id);
        slot.checks.delete(m.id);
        if (m.error === undefined) c?.resolve();
        else c?.reject(new Error(`check of ${c.name} failed in its probe worker: ${m.error}`));
        return;
      }
      case 'stopped':
        return;
    }
  }

  private exited(slot: Slot, w: Worker, code: number): void {
    if (slot.worker !== w) return;
    slot.worker = undefined;
    const why = slot.lastError ? slot.lastError.message : `exit code ${code}`;
    for (const c of slot.checks.values())
      c.reject(new Error(`check of ${c.name}: its probe worker stopped before it finished (${why})`));
    slot.checks.clear();
    if (this.closing) return;
    slot.downSince = monoMs();
    // Not told to stop: a crash. Its targets are started again, never silently dropped.
    this.restarts++;
    if (Date.now() - slot.startedAt >= STABLE_MS) slot.delayMs = this.opts.restartDelayMs ?? 1000;
    const delayMs = slot.delayMs;
    slot.delayMs = Math.min(MAX_RESTART_DELAY_MS, slot.delayMs * 2);
    this.opts.log?.error(
      `probe worker ${slot.index} stopped (${why}): its ${slot.targets.length} targets are not probed until it restarts in ${delayMs / 1000} s`,
      {
        component: 'probes',
        worker: slot.index,
        targets: slot.targets.length,
        restartInMs: delayMs,
        ...(slot.lastError ? { err: slot.lastError } : { exitCode: code }),
      },
    );
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (this.closing) return;
      this.spawn(slot);
      this.opts.log?.info(`probe worker ${slot.index} restarted with its ${slot.targets.length} targets`, {
        component: 'probes',
        worker: slot.index,
      });
    }, delayMs);
    slot.restartTimer.unref();
  }
}

/**
 * Starts the worker threads `probes.workers` asks for (none for a small config under `auto`) and says
 * so in the log; undefined when every probe stays on the main thread.
 */
export function startProbeWorkers(
  setting: ProbeWorkersSetting | undefined,
  targets: readonly ProbeTarget[],
  sink: ProbeWorkerSink,
  opts: ProbeWorkerPoolOptions & { parallelism?: number } = {},
): ProbeWorkerPool | undefined {
  const plan = planProbeWorkers(setting ?? 'auto', targets, opts.parallelism ?? availableParallelism());
  const log = opts.log?.child({ component: 'probes' });
  if (plan.count > 0)
    for (const m of plan.onMain)
      log?.info(
        `${m.targets} ${m.kind} target${m.targets === 1 ? '' : 's'} stay on the main thread: ${m.why}`,
      );
  if (plan.count === 0) {
    log?.debug(`probes run on the main thread: ${plan.reason}`);
    return undefined;
  }
  const shards = plan.shards.map((s) => s.map((i) => targets[i]!));
  log?.info(`probes run in ${plan.count} worker thread${plan.count === 1 ? '' : 's'}: ${plan.reason}`, {
    workers: plan.count,
    targets: shards.map((s) => s.length),
  });
  const pool = new ProbeWorkerPool(shards, sink, { ...opts, ...(log ? { log } : {}) });
  pool.start();
  return pool;
}
