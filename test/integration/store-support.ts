import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore, type OpenStoreOptions } from '../../src/store/open.js';
import type { ResultStore } from '../../src/store/types.js';
import { serviceReachable } from '../support/services.js';

export const PG_HOST = '127.0.0.1';
export const PG_PORT = 5432;
export const pgUrl = (port = PG_PORT) => `postgres://postgres@${PG_HOST}:${port}/test`;

export const pgUp = await serviceReachable(
  PG_HOST,
  PG_PORT,
  'start PostgreSQL with trust auth for user postgres and a database `test` (`apt-get install postgresql`, `createdb test`)',
);

/** One engine under test: opens fresh stores (a temp dir / a fresh schema) and removes them afterwards. */
export interface EngineFixture {
  engine: 'sqlite' | 'postgres';
  available: boolean;
  /** A spec for a fresh, empty store (the same spec opens the same store again). */
  freshSpec(): string;
  open(spec?: string, opts?: OpenStoreOptions): Promise<ResultStore>;
  cleanup(): Promise<void>;
}

export function sqliteFixture(): EngineFixture {
  const dirs: string[] = [];
  const stores: ResultStore[] = [];
  return {
    engine: 'sqlite',
    available: true,
    freshSpec() {
      const dir = mkdtempSync(join(tmpdir(), 'coalmine-store-'));
      dirs.push(dir);
      return `sqlite:${join(dir, 'coalmine.db')}`;
    },
    async open(spec, opts) {
      const s = await openStore(spec ?? this.freshSpec(), opts);
      stores.push(s);
      return s;
    },
    async cleanup() {
      for (const s of stores.splice(0)) await s.close();
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  };
}

export function postgresFixture(port = PG_PORT): EngineFixture {
  const schemas: string[] = [];
  const stores: ResultStore[] = [];
  return {
    engine: 'postgres',
    available: pgUp,
    freshSpec() {
      const schema = `coalmine_test_${randomBytes(6).toString('hex')}`;
      schemas.push(schema);
      return `${pgUrl(port)}?schema=${schema}`;
    },
    async open(spec, opts) {
      const s = await openStore(spec ?? this.freshSpec(), opts);
      stores.push(s);
      return s;
    },
    async cleanup() {
      for (const s of stores.splice(0)) await s.close().catch(() => undefined);
      if (schemas.length === 0) return;
      const c = new pg.Client({ connectionString: pgUrl() });
      await c.connect();
      try {
        for (const s of schemas.splice(0)) await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

export const engines = (): EngineFixture[] => [sqliteFixture(), postgresFixture()];

/**
 * Runs `sqlite` on the store's SQLite file, or `postgres` on a client in its schema: one of our tables
 * straight from the engine, for checks and hand-made states.
 */
async function onEngine<T>(
  spec: string,
  readonly: boolean,
  sqlite: (db: import('better-sqlite3').Database) => T,
  postgres: (c: pg.Client) => Promise<T>,
): Promise<T> {
  if (spec.startsWith('sqlite:')) {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(spec.slice('sqlite:'.length), { readonly });
    try {
      return sqlite(db);
    } finally {
      db.close();
    }
  }
  const url = new URL(spec);
  const schema = url.searchParams.get('schema');
  url.searchParams.delete('schema');
  const c = new pg.Client({
    connectionString: url.toString(),
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  await c.connect();
  try {
    return await postgres(c);
  } finally {
    await c.end();
  }
}

/** Rows in one of our tables, straight from the engine (for retention checks). */
export function countRows(spec: string, sql: string): Promise<number> {
  return onEngine(
    spec,
    true,
    (db) => (db.prepare(sql).get() as { n: number }).n,
    async (c) => Number((await c.query<{ n: string }>(sql)).rows[0]!.n),
  );
}

/** Runs one statement on one of our tables, straight on the engine (to set up a state by hand). */
export function execSql(spec: string, sql: string): Promise<void> {
  return onEngine(
    spec,
    false,
    (db) => void db.prepare(sql).run(),
    async (c) => void (await c.query(sql)),
  );
}

/** Exact percentile as LatencyHistogram defines it: the smallest value with at least p % at or below it. */
export function exactPercentile(sorted: readonly number[], p: number): number {
  if (p <= 0) return sorted[0]!;
  if (p >= 100) return sorted.at(-1)!;
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!;
}

/** A seeded PRNG (mulberry32), so a failing case can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
