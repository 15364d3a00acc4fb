/** PostgreSQL schema, one numbered migration per change; applied in order, each once (schema_migrations). */
export const postgresMigrations: { version: number; name: string; sql: string }[] = [
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
];
