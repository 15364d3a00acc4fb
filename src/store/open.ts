import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CoalmineError } from '../core/errors.js';
import type { Retention } from './config.js';
import { Store } from './store.js';
import type { ResultStore } from './types.js';

/** A store spec that does not parse, or a store that cannot be opened; the message says what to fix. */
export class StoreError extends CoalmineError {}

export interface OpenStoreOptions {
  retention?: Retention;
  /** Injectable wall clock for choosing query tiers. */
  nowMs?: () => number;
  /** PostgreSQL pool size. */
  poolSize?: number;
}

export type StoreSpec =
  { engine: 'sqlite'; file: string } | { engine: 'postgres'; url: string; schema?: string };

const SQLITE_FILE = /\.(db|sqlite3?)$/i;

/**
 * `sqlite:PATH` (a file), `postgres://...` or `postgresql://...` (optionally `?schema=NAME`), or a plain
 * path: a directory (created if missing) gets `coalmine.db` inside it; a path ending .db/.sqlite is the file.
 */
export function parseStoreSpec(spec: string): StoreSpec {
  const s = spec.trim();
  if (s === '')
    throw new StoreError('store: empty spec; use sqlite:PATH, a directory, or postgres://user@host:5432/db');
  if (/^postgres(ql)?:\/\//i.test(s)) {
    let url: URL;
    try {
      url = new URL(s);
    } catch {
      throw new StoreError(
        `store "${redact(s)}": not a valid URL (expected postgres://user@host:5432/database)`,
      );
    }
    if (!url.hostname)
      throw new StoreError(`store "${redact(s)}": no host (expected postgres://user@host:5432/database)`);
    const schema = url.searchParams.get('schema') ?? undefined;
    url.searchParams.delete('schema');
    return schema === undefined
      ? { engine: 'postgres', url: url.toString() }
      : { engine: 'postgres', url: url.toString(), schema };
  }
  if (/^sqlite:/i.test(s)) {
    const path = s.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === '') throw new StoreError('store "sqlite:": no path (expected sqlite:./data/coalmine.db)');
    return { engine: 'sqlite', file: resolve(path) };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(s);
  if (scheme)
    throw new StoreError(
      `store "${redact(s)}": unknown engine "${scheme[1]}" (supported: sqlite:PATH, a directory, postgres://...)`,
    );
  const path = resolve(s);
  if (existsSync(path) && statSync(path).isDirectory())
    return { engine: 'sqlite', file: join(path, 'coalmine.db') };
  if (SQLITE_FILE.test(path)) return { engine: 'sqlite', file: path };
  return { engine: 'sqlite', file: join(path, 'coalmine.db') };
}

/** Hides a password in a URL for messages. */
function redact(s: string): string {
  return s.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
}

/** Opens (creating and migrating as needed) the store a spec names. */
export async function openStore(spec: string, opts: OpenStoreOptions = {}): Promise<ResultStore> {
  const p = parseStoreSpec(spec);
  const storeOpts = {
    ...(opts.retention ? { retention: opts.retention } : {}),
    ...(opts.nowMs ? { nowMs: opts.nowMs } : {}),
  };
  if (p.engine === 'sqlite') {
    try {
      // Each engine's module (and its client library) loads only when a store of that engine opens.
      const { SqliteBackend } = await import('./sqlite/sqlite-store.js');
      return new Store(new SqliteBackend(p.file), storeOpts);
    } catch (err) {
      throw new StoreError(`store sqlite:${p.file}: cannot open: ${(err as Error).message}`, { cause: err });
    }
  }
  try {
    const { PostgresBackend } = await import('./postgres/postgres-store.js');
    const backend = await PostgresBackend.open(p.url, {
      ...(p.schema ? { schema: p.schema } : {}),
      ...(opts.poolSize ? { max: opts.poolSize } : {}),
    });
    return new Store(backend, storeOpts);
  } catch (err) {
    const e = err as Error & { code?: string };
    const why =
      e.code === 'ECONNREFUSED'
        ? 'nothing is listening there (is PostgreSQL running?)'
        : e.code === '3D000'
          ? `${e.message} (create it with createdb)`
          : e.message || String(err);
    throw new StoreError(`store ${redact(p.url)}: cannot connect: ${why}`, { cause: err });
  }
}
