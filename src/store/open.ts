import { redactText } from '../core/log.js';
import type { Retention } from './config.js';
import { engineOf, storeEngines, type StoreEngine, type StoreSpec } from './engines.js';
import { StoreError } from './errors.js';
import { Store } from './store.js';
import type { ResultStore } from './types.js';

export { StoreError } from './errors.js';
export type { StoreEngine, StoreSpec } from './engines.js';

export interface OpenStoreOptions {
  retention?: Retention;
  /** Injectable wall clock for choosing query tiers. */
  nowMs?: () => number;
  /** PostgreSQL pool size. */
  poolSize?: number;
}

/** How long the file system may take to answer about the store's path (a hung network mount does not). */
export const STORE_CHECK_TIMEOUT_MS = 5000;

/** The forms of every engine, SQLite's (the default) first. */
const FORMS = [...storeEngines]
  .reverse()
  .map((e) => e.forms)
  .join(', or ');

const shown = (url: string) => JSON.stringify(redactText(url, 200));

/**
 * A spec, or what is wrong with the url as a sentence that names it: tried by each engine in order.
 */
function parsed(url: string): StoreSpec | { problem: string; empty?: true } {
  const s = url.trim();
  if (s === '') return { problem: `empty: use ${FORMS}`, empty: true };
  for (const engine of storeEngines) {
    const p = engine.parse(s);
    if (typeof p === 'string') return { problem: `${shown(s)} ${p}` };
    if (p !== undefined) return p;
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(s)?.[1] ?? s;
  return { problem: `unknown engine "${redactText(scheme, 40)}" in ${shown(s)} (supported: ${FORMS})` };
}

/**
 * What is wrong with a `store.url` that can be told without touching the file system or the network
 * (an engine we do not have, a URL that does not parse, a path under /proc), or undefined.
 */
export function storeSpecProblem(url: string): string | undefined {
  const p = parsed(url);
  if ('problem' in p) return p.problem;
  return engineOf(p).staticProblem?.(p);
}

/** The engine and its settings a `store.url` names; a StoreError says what is wrong with it. */
export function parseStoreSpec(url: string): StoreSpec {
  const p = parsed(url);
  if ('problem' in p)
    throw new StoreError(p.empty ? `store: empty spec; use ${FORMS}` : `store: ${p.problem}`);
  return p;
}

/** Opens (creating and migrating as needed) the store a spec names. */
export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<ResultStore> {
  return openSpec(parseStoreSpec(url), opts);
}

/**
 * Opens the store a spec names, after the engine's checks of what can hang or fail obscurely, so each
 * failure is one StoreError saying what to fix: for SQLite a path under /proc, /sys or /dev, an existing
 * file that is not a regular file (a FIFO blocks SQLite's open forever), a directory that cannot be
 * created or written, a file system that does not answer within `timeoutMs`; for PostgreSQL a server
 * that cannot be reached.
 */
export async function openCheckedStore(
  url: string,
  opts: OpenStoreOptions = {},
  timeoutMs = STORE_CHECK_TIMEOUT_MS,
): Promise<ResultStore> {
  const spec = parseStoreSpec(url);
  await engineOf(spec).preflight?.(spec, timeoutMs);
  return openSpec(spec, opts);
}

async function openSpec(spec: StoreSpec, opts: OpenStoreOptions): Promise<ResultStore> {
  const engine = engineOf(spec);
  try {
    const backend = await engine.open(spec, opts.poolSize ? { poolSize: opts.poolSize } : {});
    return new Store(backend, {
      ...(opts.retention ? { retention: opts.retention } : {}),
      ...(opts.nowMs ? { nowMs: opts.nowMs } : {}),
    });
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    throw new StoreError(`store ${engine.shown(spec)}: ${engine.openProblem(spec, e)}`, { cause: err });
  }
}

/** The spec's engine as messages name it (`SQLite`). */
export function storeLabel(spec: StoreSpec): string {
  return engineOf(spec).label;
}

/** The spec as messages show it (secrets hidden). */
export function shownSpec(spec: StoreSpec): string {
  return engineOf(spec).shown(spec);
}

/** Whether a store exists at the spec without creating one; undefined when the engine cannot tell. */
export function storeExists(spec: StoreSpec): boolean | undefined {
  return engineOf(spec).exists?.(spec);
}

/** Results the writer should hand an open store's engine per batch, if it asks for a size. */
export function writeBatchOf(engine: StoreEngine): number | undefined {
  return storeEngines.find((e) => e.engine === engine)?.writeBatch;
}
