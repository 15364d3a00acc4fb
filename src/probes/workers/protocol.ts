import type { ProbeResult } from '../../core/types.js';
import type { ProbeTarget } from './plan.js';

/** What a probe worker starts with (its workerData). */
export interface WorkerInit {
  /** Its share of the targets; messages name a target by its index here. */
  targets: ProbeTarget[];
  /** The agent's start, process.hrtime in ms (one clock for every thread): the slots count from it. */
  originMs: number;
  /** After a restart, when the thread before this one stopped: its first slots are the ones after. */
  notBeforeMs?: number;
  /** A batch goes to the main thread this long after its first entry at the latest. */
  batchMs: number;
  /** ... or as soon as it holds this many runs and scheduler events. */
  maxBatch: number;
}

/** Main thread -> worker. */
export type ToWorker =
  /** Run the target now (check-now), then answer `checked` after the batch that holds its result. */
  | { type: 'check'; id: number; target: number }
  /** Stop scheduling, send what was measured, answer `stopped`. */
  | { type: 'stop' };

/** One finished run: the fields of an Observation the main thread does not know already. */
export interface RunRecord {
  target: number;
  startedAtMs: number;
  result: ProbeResult;
}

/** skipped's reasons, as numbers in a batch. */
export const SKIP_REASONS = ['overlap', 'stalled'] as const;

/** Worker -> main thread. */
export type FromWorker =
  | {
      type: 'batch';
      runs: RunRecord[];
      /** Scheduler lateness, flat: target, seconds, target, seconds... (before the runs they started). */
      late: number[];
      /** Skipped slots, flat: target, index into SKIP_REASONS... */
      skipped: number[];
    }
  | { type: 'checked'; id: number; error?: string }
  | { type: 'stopped' };
