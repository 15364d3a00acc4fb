import type { Backend } from './backend.js';

/** What an engine is given to open a store, besides its spec. */
export interface EngineOpenOptions {
  /** PostgreSQL pool size. */
  poolSize?: number;
}

/**
 * One store engine: the form of the `store.url` it takes, the checks before opening, and how it opens.
 * Each engine's folder exports one; src/store/engines.ts lists them. The definition loads no client
 * library: `open` imports the engine's module (and its driver) when a store of that engine opens.
 */
export interface StoreEngineDefinition<Spec extends { engine: string }> {
  readonly engine: Spec['engine'];
  /** The engine's name in messages (`SQLite`). */
  readonly label: string;
  /** The `store.url` forms, for help and errors (`sqlite:PATH, a directory`). */
  readonly forms: string;
  /**
   * The spec a `store.url` names, when it is this engine's form; a problem (a phrase that follows the
   * quoted url: `has no host (expected ...)`) when it is this engine's but wrong; undefined when it is
   * not this engine's. Tried in the registry's order: the last engine may take whatever is left.
   */
  parse(url: string): Spec | string | undefined;
  /** What is wrong with the spec that can be told without touching the file system or the network. */
  staticProblem?(spec: Spec): string | undefined;
  /**
   * Checks what can hang or fail obscurely before the store opens (a path on a hung mount, a FIFO);
   * throws a StoreError saying what to fix. Runs within `timeoutMs`.
   */
  preflight?(spec: Spec, timeoutMs: number): Promise<void>;
  /** The spec as messages show it: secrets hidden. */
  shown(spec: Spec): string;
  open(spec: Spec, opts: EngineOpenOptions): Promise<Backend>;
  /** Why opening failed, in words that say what to fix (after `store X: `). */
  openProblem(spec: Spec, err: Error & { code?: unknown }): string;
  /** Whether a store exists at the spec, for commands that must not create one; undefined: no cheap way to tell. */
  exists?(spec: Spec): boolean | undefined;
  /** Results the writer hands the engine per batch; unset: the writer's default. */
  readonly writeBatch?: number;
}

export function defineStoreEngine<Spec extends { engine: string }>(
  def: StoreEngineDefinition<Spec>,
): StoreEngineDefinition<Spec> {
  return def;
}
