import v8 from 'node:v8';

/**
 * How much memory a long-running agent holds is mostly V8's choice, not ours. With its defaults V8 lets
 * the young generation grow to 16 MB per semi-space (33 MB in all) and lets garbage pile up in the old
 * generation: an agent probing 200 HTTP targets a second held 132 MB RSS at 30 s and still grew, though
 * only 22 MB of its heap was live. Held to a fixed 1 MB semi-space and told to favour size, the same
 * agent holds 85-90 MB for no measurable CPU (bench/probes.mjs, section memory).
 *
 * Both settings are flags V8 reads while it runs, not only at start-up, so the agent can set them
 * itself (`v8.setFlagsFromString`) instead of asking every user for `NODE_OPTIONS`. The semi-space
 * growth factor decides whether the young generation may grow; it must be set before the agent's
 * modules load, or the load itself has already grown it.
 *
 * Commands that measure throughput (pair, canary, coalminer, relay, bench) keep V8's defaults: a small
 * young generation promotes every ping still in flight at each scavenge, which costs CPU at tens of
 * thousands of pings a second.
 */

/** Node or V8 options that size the heap: when a user gave one, we leave V8's heap settings alone. */
const HEAP_FLAG =
  /(^|\s)--(max-semi-space-size|min-semi-space-size|semi-space-growth-factor|optimize-for-size|no-optimize-for-size|max-old-space-size|max-heap-size)(=|\s|$)/;

/** The commands that run for months and should hold little memory. */
const LEAN_COMMANDS = new Set(['run', 'demo']);

/** Above this many pings a second, summed over a config's canaries, the agent keeps V8's defaults. */
export const LEAN_HEAP_MAX_RATE = 1000;

/**
 * Above this many probes a second, summed over a config's targets, the agent keeps V8's defaults. Each
 * probe in flight at a scavenge is promoted, and a 1 MB young generation scavenges often: with 10,000
 * TCP targets at 2 s (5,000 probes/s) the collector took 43% of the agent's CPU and it ran 4,100 probes
 * a second, against 8% and all 5,000 with V8's defaults. At 1,000/s the small heap cost 17% more CPU for
 * 84 MB of RSS instead of 117 MB; at 2,500/s 50% more CPU for 105 MB instead of 204 MB.
 */
export const LEAN_HEAP_MAX_PROBE_RATE = 2000;

/**
 * Why a config's work is too much for the small heap, or undefined when it is not: pings a second over
 * its canaries, probes a second over its targets.
 */
export function tooBusyForLeanHeap(work: {
  pingsPerSecond: number;
  probesPerSecond: number;
}): string | undefined {
  if (work.pingsPerSecond > LEAN_HEAP_MAX_RATE)
    return `the canaries send more than ${LEAN_HEAP_MAX_RATE} pings a second`;
  if (work.probesPerSecond > LEAN_HEAP_MAX_PROBE_RATE)
    return `the targets make more than ${LEAN_HEAP_MAX_PROBE_RATE} probes a second`;
  return undefined;
}

/** V8's own default for the semi-space growth factor (`node --v8-options`). */
const DEFAULT_GROWTH_FACTOR = 2;

/**
 * How much a function runs before V8 considers optimizing it (bytecode executed; `--interrupt-budget`).
 * The small heap raises it fourfold: fewer functions are compiled by TurboFan, whose code, compile-time
 * memory and resident part of the node binary an agent then holds. With 200 HTTP targets a second that
 * is 3-4 MB less RSS (78 -> 74 MB median, by hand); the functions that stay hot are still optimized.
 */
const DEFAULT_INTERRUPT_BUDGET = 67_584;
const LEAN_INTERRUPT_BUDGET = 4 * DEFAULT_INTERRUPT_BUDGET;

let lean = false;

/** Whether the user chose heap sizes themselves, on the command line or in NODE_OPTIONS. */
export function userSizedHeap(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return HEAP_FLAG.test(execArgv.join(' ')) || HEAP_FLAG.test(nodeOptions ?? '');
}

/**
 * Turns the small heap on or off for this process. On: the young generation keeps its initial 1 MB
 * semi-space and V8 favours size (it collects the old generation sooner). Off: V8's defaults again.
 */
export function setLeanHeap(on: boolean): void {
  if (on === lean) return;
  v8.setFlagsFromString(`--semi-space-growth-factor=${on ? 1 : DEFAULT_GROWTH_FACTOR}`);
  v8.setFlagsFromString(on ? '--optimize-for-size' : '--no-optimize-for-size');
  v8.setFlagsFromString(`--interrupt-budget=${on ? LEAN_INTERRUPT_BUDGET : DEFAULT_INTERRUPT_BUDGET}`);
  lean = on;
}

/** Whether this process runs with the small heap. */
export function leanHeap(): boolean {
  return lean;
}

/**
 * Called by bin/coalmine.js before the CLI's modules load: the small heap for the long-running
 * commands (`argv[2]` is the command: the program takes no options before it but --help and
 * --version), unless the user sized the heap.
 */
export function leanHeapAtStart(
  argv: readonly string[],
  execArgv: readonly string[],
  nodeOptions: string | undefined,
): boolean {
  const command = argv[2];
  if (command === undefined || !LEAN_COMMANDS.has(command) || userSizedHeap(execArgv, nodeOptions))
    return false;
  setLeanHeap(true);
  return true;
}
