import type { StoreEngineDefinition } from './engine.js';
import { postgresEngine, type PostgresSpec } from './postgres/engine.js';
import { sqliteEngine, type SqliteSpec } from './sqlite/engine.js';

/**
 * Every store engine, in the order a `store.url` is tried: SQLite last, since it takes any plain path.
 * Adding an engine is its folder's StoreEngineDefinition and one line here (and its spec in StoreSpec).
 */
export const storeEngines = [postgresEngine, sqliteEngine] as const;

export type StoreSpec = PostgresSpec | SqliteSpec;

export type StoreEngine = StoreSpec['engine'];

/** The definition of a spec's engine. */
export function engineOf<S extends StoreSpec>(spec: S): StoreEngineDefinition<S> {
  return storeEngines.find((e) => e.engine === spec.engine) as unknown as StoreEngineDefinition<S>;
}
