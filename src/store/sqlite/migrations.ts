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
];
