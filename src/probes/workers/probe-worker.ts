/**
 * A probe worker thread (started by pool.ts): runs the scheduler and the probes for its share of the
 * targets, exactly as the main thread would (same slots: the scheduler's offsets hash the target's
 * name), and sends the results and the scheduler's lateness and skipped slots back in batches.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { systemClock } from '../../core/clock.js';
import { Scheduler } from '../../core/scheduler.js';
import { runProbe } from '../run.js';
import { SKIP_REASONS, type FromWorker, type RunRecord, type ToWorker, type WorkerInit } from './protocol.js';

const port = parentPort;
if (!port)
  throw new Error(
    'probe-worker.js is a worker thread of the agent (src/probes/workers/pool.ts), not a program',
  );
const init = workerData as WorkerInit;
const indexOf = new Map(init.targets.map((t, i) => [t.name, i]));

let runs: RunRecord[] = [];
let late: number[] = [];
let skipped: number[] = [];
let pending = 0;
let timer: NodeJS.Timeout | undefined;

const post = (m: FromWorker) => port.postMessage(m);

function flush(): void {
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  if (pending === 0) return;
  post({ type: 'batch', runs, late, skipped });
  runs = [];
  late = [];
  skipped = [];
  pending = 0;
}

function queued(): void {
  if (++pending >= init.maxBatch) flush();
  else timer ??= setTimeout(flush, init.batchMs);
}

const scheduler = new Scheduler(systemClock, {
  lateness: (id, seconds) => {
    late.push(indexOf.get(id)!, seconds);
    queued();
  },
  skipped: (id, reason) => {
    skipped.push(indexOf.get(id)!, SKIP_REASONS.indexOf(reason));
    queued();
  },
});

const slotsFrom = {
  originMs: init.originMs,
  ...(init.notBeforeMs !== undefined && { notBeforeMs: init.notBeforeMs }),
};
init.targets.forEach((t, i) => {
  scheduler.add(
    {
      id: t.name,
      intervalMs: t.intervalMs,
      run: async () => {
        const startedAtMs = systemClock.wallMs();
        const result = await runProbe(t.kind, t.target, t.options, {
          clock: systemClock,
          timeoutMs: t.timeoutMs,
        });
        runs.push({ target: i, startedAtMs, result });
        queued();
      },
    },
    slotsFrom,
  );
});

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'check': {
      const name = init.targets[m.target]?.name;
      if (name === undefined) {
        post({ type: 'checked', id: m.id, error: `no target ${m.target} in this worker` });
        return;
      }
      scheduler.runNow(name).then(
        () => {
          // The result goes first, so the main thread has observed it when it reads the answer.
          flush();
          post({ type: 'checked', id: m.id });
        },
        (err: unknown) => post({ type: 'checked', id: m.id, error: String((err as Error)?.message ?? err) }),
      );
      return;
    }
    case 'stop':
      // Runs still going are left to the thread's end (the main thread terminates it next), as the main
      // thread's own runs are when the agent closes; what was measured already goes now.
      scheduler.stop();
      flush();
      post({ type: 'stopped' });
      return;
    default:
      // The pool and this file disagree: a bug, which the pool logs as this worker's crash.
      throw new Error(`probe worker: unknown message ${JSON.stringify(m)}`);
  }
});

scheduler.start();
