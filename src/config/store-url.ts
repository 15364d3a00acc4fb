import { storeSpecProblem } from '../store/open.js';

/**
 * What is wrong with a `store.url` that can be told without touching the file system or the network:
 * an engine we do not have, a URL that does not parse, a path under /proc, /sys or /dev. Each engine
 * (src/store/engines.ts) parses its own form; this is their answer, for the config's checks.
 */
export function storeUrlProblem(url: string): string | undefined {
  return storeSpecProblem(url);
}
