import type Database from 'better-sqlite3';
import { legacyProbeRun, toProbeChunks } from '../backend.js';

/** A schema change: its SQL, then (for a change of how rows are encoded) `run`, in the same transaction. */
export interface SqliteMigration {
  version: number;
  name: string;
  sql: string;
  run?: (db: Database.Database) => void;
}

/** Old probe_raw rows per conversion step. */
const CONVERT_PAGE = 20_000;

/**
 * SQLite schema, one numbered migration per change; applied in order, each once (schema_migrations).
 */
export const sqliteMigrations: SqliteMigration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
      CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        type TEXT NOT NULL,            -- 'p' probe target, 'f' flow
        key TEXT NOT NULL,             -- probe name, or canary \\x1f coalminer
        kind TEXT NOT NULL,            -- probe kind, or flow transport
        target TEXT NOT NULL,          -- probe target, or flow region
        UNIQUE (type, key, kind, target)
      );
      CREATE TABLE probe_raw (
        id INTEGER PRIMARY KEY,
        sid INTEGER NOT NULL,
        time INTEGER NOT NULL,         -- Unix ms
        ok INTEGER NOT NULL,
        dur INTEGER NOT NULL,          -- ns
        phases TEXT,                   -- JSON, ns per phase
        err_code TEXT,
        err_msg TEXT,
        vals TEXT                      -- JSON
      );
      CREATE INDEX probe_raw_sid_time ON probe_raw (sid, time);
      CREATE TABLE flow_raw (
        id INTEGER PRIMARY KEY,
        sid INTEGER NOT NULL,
        time INTEGER NOT NULL,
        interval_ms INTEGER NOT NULL,
        run_id TEXT NOT NULL,
        received INTEGER NOT NULL,
        lost INTEGER NOT NULL,
        duplicated INTEGER NOT NULL,
        reordered INTEGER NOT NULL,
        late INTEGER NOT NULL,
        send_failed INTEGER NOT NULL,
        in_flight INTEGER NOT NULL,
        latency BLOB NOT NULL          -- codec.ts histogram, ns
      );
      CREATE INDEX flow_raw_sid_time ON flow_raw (sid, time);
      CREATE TABLE rollup (
        sid INTEGER NOT NULL,
        tier INTEGER NOT NULL,         -- 1: 1-minute buckets in hour blocks, 2: 1-hour buckets in day blocks
        block INTEGER NOT NULL,        -- block start, Unix ms
        data BLOB NOT NULL,            -- codec.ts block
        PRIMARY KEY (sid, tier, block)
      ) WITHOUT ROWID;
      CREATE TABLE rollup_dirty (
        sid INTEGER NOT NULL,
        tier INTEGER NOT NULL,
        block INTEGER NOT NULL,
        type TEXT NOT NULL,
        PRIMARY KEY (tier, sid, block)
      ) WITHOUT ROWID;
      CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    name: 'alert history and silences',
    sql: `
      CREATE TABLE alert_events (
        id INTEGER PRIMARY KEY,        -- insertion order: ties on (rule, at) keep it
        rule TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        at INTEGER NOT NULL,           -- Unix ms
        value REAL                     -- null: no data at that evaluation
      );
      CREATE INDEX alert_events_rule_at ON alert_events (rule, at);
      CREATE TABLE silences (
        id TEXT PRIMARY KEY,
        matchers TEXT NOT NULL,        -- JSON object, label -> value
        starts_at INTEGER NOT NULL,    -- Unix ms
        ends_at INTEGER NOT NULL,
        comment TEXT NOT NULL,
        created_by TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX silences_ends_at ON silences (ends_at);
    `,
  },
  {
    version: 3,
    name: 'local drops and the canary schedule',
    sql: `
      -- Rows written before this release dropped nothing locally that the store knew of: 0.
      ALTER TABLE flow_raw ADD COLUMN dropped_locally INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE schedule_raw (
        id INTEGER PRIMARY KEY,
        sid INTEGER NOT NULL,          -- a series of type 'c': canary \\x1f coalminer, transport, ''
        time INTEGER NOT NULL,         -- Unix ms, start of the interval
        interval_ms INTEGER NOT NULL,
        run_id TEXT NOT NULL,
        due INTEGER NOT NULL,          -- pings that fell due in the interval
        attempted INTEGER NOT NULL,    -- pings published or given up on in the interval
        behind INTEGER NOT NULL,       -- gauge at the end: pings due but not attempted
        behind_ms INTEGER NOT NULL     -- gauge at the end: how far behind its schedule the canary was
      );
      CREATE INDEX schedule_raw_sid_time ON schedule_raw (sid, time);
    `,
  },
  {
    version: 4,
    name: 'incremental rollups',
    sql: `
      -- The earliest and latest time written into a dirty block since its last rollup, so the rollup
      -- rebuilds only the buckets between them. Marks from before this release have them null: the
      -- whole block is rebuilt, as then.
      ALTER TABLE rollup_dirty ADD COLUMN lo INTEGER;
      ALTER TABLE rollup_dirty ADD COLUMN hi INTEGER;
    `,
  },
  {
    version: 5,
    name: 'raw probe runs in chunks',
    sql: `
      -- Raw probe runs of one series within one hour, encoded together (codec.ts encodeProbeChunk): one
      -- row per run with its JSON took about 135 bytes with its index. The writer writes a chunk per series and batch;
      -- the rollup merges a minute's chunks into one.
      CREATE TABLE probe_chunks (
        id INTEGER PRIMARY KEY,        -- write order: breaks ties on time
        sid INTEGER NOT NULL,
        t0 INTEGER NOT NULL,           -- first run's time, Unix ms
        t1 INTEGER NOT NULL,           -- last run's time, in the same hour as t0
        n INTEGER NOT NULL,            -- runs
        data BLOB NOT NULL             -- codec.ts probe chunk
      );
      CREATE INDEX probe_chunks_sid_t0 ON probe_chunks (sid, t0, t1);
    `,
    run: convertProbeRaw,
  },
];

/** Migration 5: probe_raw rows (one per run) become chunks, per series and hour, then probe_raw goes. */
function convertProbeRaw(db: Database.Database): void {
  // Pages in (sid, time, id) order, the old index's: a series' hour is mostly one chunk, and runs of
  // the same ms keep their order.
  const page = db.prepare(
    `SELECT id, sid, time, ok, dur, phases, err_code, err_msg, vals FROM probe_raw
     WHERE (sid, time, id) > (?, ?, ?) ORDER BY sid, time, id LIMIT ${CONVERT_PAGE}`,
  );
  const ins = db.prepare('INSERT INTO probe_chunks (sid, t0, t1, n, data) VALUES (?, ?, ?, ?, ?)');
  let after = [-Infinity, -Infinity, -Infinity];
  for (;;) {
    const rows = page.all(...after) as (Parameters<typeof legacyProbeRun>[0] & { id: number; sid: number })[];
    if (rows.length === 0) break;
    for (const c of toProbeChunks(rows.map((r) => ({ sid: r.sid, run: legacyProbeRun(r) }))))
      ins.run(c.sid, c.t0, c.t1, c.n, c.data);
    const last = rows.at(-1)!;
    after = [last.sid, last.time, last.id];
  }
  db.exec('DROP TABLE probe_raw');
}
