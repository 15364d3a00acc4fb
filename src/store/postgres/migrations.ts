import type pg from 'pg';
import { legacyProbeRun, toProbeChunks } from '../backend.js';
import { insertProbeChunks } from './chunks.js';

/** A schema change: its SQL, then (for a change of how rows are encoded) `run`, in the same transaction. */
export interface PostgresMigration {
  version: number;
  name: string;
  sql: string;
  run?: (c: pg.ClientBase) => Promise<void>;
}

/** Old probe_raw rows per conversion step. */
const CONVERT_PAGE = 20_000;

/**
 * PostgreSQL schema, one numbered migration per change; applied in order, each once (schema_migrations).
 */
export const postgresMigrations: PostgresMigration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
      CREATE TABLE series (
        id serial PRIMARY KEY,
        type text NOT NULL,            -- 'p' probe target, 'f' flow
        key text NOT NULL,             -- probe name, or canary \\x1f coalminer
        kind text NOT NULL,            -- probe kind, or flow transport
        target text NOT NULL,          -- probe target, or flow region
        UNIQUE (type, key, kind, target)
      );
      CREATE TABLE probe_raw (
        id bigserial PRIMARY KEY,
        sid integer NOT NULL,
        time bigint NOT NULL,          -- Unix ms
        ok boolean NOT NULL,
        dur bigint NOT NULL,           -- ns
        phases text,                   -- JSON, ns per phase
        err_code text,
        err_msg text,
        vals text                      -- JSON
      );
      CREATE INDEX probe_raw_sid_time ON probe_raw (sid, time);
      CREATE TABLE flow_raw (
        id bigserial PRIMARY KEY,
        sid integer NOT NULL,
        time bigint NOT NULL,
        interval_ms integer NOT NULL,
        run_id text NOT NULL,
        received bigint NOT NULL,
        lost bigint NOT NULL,
        duplicated bigint NOT NULL,
        reordered bigint NOT NULL,
        late bigint NOT NULL,
        send_failed bigint NOT NULL,
        in_flight bigint NOT NULL,
        latency bytea NOT NULL         -- codec.ts histogram, ns
      );
      CREATE INDEX flow_raw_sid_time ON flow_raw (sid, time);
      CREATE TABLE rollup (
        sid integer NOT NULL,
        tier smallint NOT NULL,        -- 1: 1-minute buckets in hour blocks, 2: 1-hour buckets in day blocks
        block bigint NOT NULL,         -- block start, Unix ms
        data bytea NOT NULL,           -- codec.ts block
        PRIMARY KEY (sid, tier, block)
      );
      CREATE TABLE rollup_dirty (
        sid integer NOT NULL,
        tier smallint NOT NULL,
        block bigint NOT NULL,
        type text NOT NULL,
        PRIMARY KEY (tier, sid, block)
      );
      CREATE TABLE meta (key text PRIMARY KEY, value bigint NOT NULL);
    `,
  },
  {
    version: 2,
    name: 'alert history and silences',
    sql: `
      CREATE TABLE alert_events (
        id bigserial PRIMARY KEY,      -- insertion order: ties on (rule, at) keep it
        rule text NOT NULL,
        from_state text NOT NULL,
        to_state text NOT NULL,
        at bigint NOT NULL,            -- Unix ms
        value double precision         -- null: no data at that evaluation
      );
      CREATE INDEX alert_events_rule_at ON alert_events (rule, at);
      CREATE TABLE silences (
        id text PRIMARY KEY,
        matchers text NOT NULL,        -- JSON object, label -> value
        starts_at bigint NOT NULL,     -- Unix ms
        ends_at bigint NOT NULL,
        comment text NOT NULL,
        created_by text NOT NULL
      );
      CREATE INDEX silences_ends_at ON silences (ends_at);
    `,
  },
  {
    version: 3,
    name: 'local drops and the canary schedule',
    sql: `
      -- Rows written before this release dropped nothing locally that the store knew of: 0.
      ALTER TABLE flow_raw ADD COLUMN dropped_locally bigint NOT NULL DEFAULT 0;
      CREATE TABLE schedule_raw (
        id bigserial PRIMARY KEY,
        sid integer NOT NULL,          -- a series of type 'c': canary \\x1f coalminer, transport, ''
        time bigint NOT NULL,          -- Unix ms, start of the interval
        interval_ms integer NOT NULL,
        run_id text NOT NULL,
        due bigint NOT NULL,           -- pings that fell due in the interval
        attempted bigint NOT NULL,     -- pings published or given up on in the interval
        behind bigint NOT NULL,        -- gauge at the end: pings due but not attempted
        behind_ms bigint NOT NULL      -- gauge at the end: how far behind its schedule the canary was
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
      ALTER TABLE rollup_dirty ADD COLUMN lo bigint;
      ALTER TABLE rollup_dirty ADD COLUMN hi bigint;
    `,
  },
  {
    version: 5,
    name: 'raw probe runs in chunks',
    sql: `
      -- Raw probe runs of one series within one hour, encoded together (codec.ts encodeProbeChunk): one
      -- row per run with its JSON and index took about 230 bytes. The writer writes a chunk per series
      -- and batch; the rollup merges a minute's chunks into one.
      CREATE TABLE probe_chunks (
        sid integer NOT NULL,
        n integer NOT NULL,            -- runs
        t0 bigint NOT NULL,            -- first run's time, Unix ms
        t1 bigint NOT NULL,            -- last run's time, in the same hour as t0
        id bigserial,                  -- write order: breaks ties on time
        data bytea NOT NULL,           -- codec.ts probe chunk
        PRIMARY KEY (sid, t0, id)
      );
    `,
    run: convertProbeRaw,
  },
];

/** Migration 5: probe_raw rows (one per run) become chunks, per series and hour, then probe_raw goes. */
async function convertProbeRaw(c: pg.ClientBase): Promise<void> {
  // Pages in (sid, time, id) order, the old index's: a series' hour is mostly one chunk, and runs of
  // the same ms keep their order.
  let after: [number, number, number] = [-1, Number.MIN_SAFE_INTEGER, 0];
  for (;;) {
    const { rows } = await c.query<Parameters<typeof legacyProbeRun>[0] & { id: number; sid: number }>(
      `SELECT id::float8 AS id, sid, time::float8 AS time, ok, dur::float8 AS dur, phases, err_code, err_msg, vals
       FROM probe_raw WHERE (sid, time, id) > ($1::int, $2::int8, $3::int8) ORDER BY sid, time, id LIMIT ${CONVERT_PAGE}`,
      after,
    );
    if (rows.length === 0) break;
    await insertProbeChunks(c, toProbeChunks(rows.map((r) => ({ sid: r.sid, run: legacyProbeRun(r) }))));
    const last = rows.at(-1)!;
    after = [last.sid, last.time, last.id];
  }
  await c.query('DROP TABLE probe_raw');
}
