// @ts-check
/**
 * What bench/scale.mjs loads into the agent (NODE_OPTIONS=--import=<this file>): scale-hook.mjs, on the
 * main thread only. NODE_OPTIONS' --import runs in every thread, and the agent's probe workers
 * (probes.workers) would each start the hook's timers and wrappers and overwrite the main thread's
 * figures in $SCALE_HOOK_OUT; what the bench reads of the hook is the main thread's.
 */
import { isMainThread } from 'node:worker_threads';

if (isMainThread) await import('./scale-hook.mjs');
