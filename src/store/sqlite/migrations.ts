/** SQLite schema, one numbered migration per change; applied in order, each once (schema_migrations). */
export const sqliteMigrations: { version: number; name: string; sql: string }[] = [
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
];
