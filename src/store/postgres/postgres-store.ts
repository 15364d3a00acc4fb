import pg from 'pg';
import {
  floorTo,
  DAY,
  HOUR,
  MINUTE,
  type RawFlowRow,
  type RawProbeRow,
  type SeriesCode,
} from '../aggregate.js';
import {
  addDirty,
  dirtyRange,
  flowKey,
  growsPrevious,
  mergeChunks,
  nonNegInt,
  runsOf,
  secondsToMs,
  toProbeChunks,
  toRawProbeRow,
  toStoredRun,
  type Backend,
  type BlockBase,
  type BlockBuilders,
  type DirtyBlocks,
  type ProbeChunkRow,
  type SeriesLabels,
  type StoredChunk,
  toAlertEvent,
  toSilence,
  type AlertEventRow,
  type RetentionCutoffs,
  type SilenceRow,
  type StoredBlock,
} from '../backend.js';
import { LatencyHistogram } from '../../stats/histogram.js';
import { decodeHistogram, encodeHistogram } from '../codec.js';
import type { AlertEventRecord, FlowRecord, ProbeRecord, ScheduleRecord, SilenceRecord } from '../types.js';
import { insertProbeChunks } from './chunks.js';
import { postgresMigrations, type PostgresMigration } from './migrations.js';
import { probeDirtyUntil, readFlowRows, readProbeBlocks } from './overview.js';
import type { KeyedBlock } from '../overview.js';
import type { KeyedFlowRow } from '../flow-overview.js';

/** Series per retention statement. */
const RETENTION_SLICE = 1000;

/** A rollup_dirty row: lo and hi are null on marks from before migration 4 (the whole block). */
interface DirtyRow {
  sid: number;
  block: number;
  type: SeriesCode;
  lo: number | null;
  hi: number | null;
}

/**
 * A second mark of a dirty block widens its range; a null (whole-block) mark stays null. LEAST and
 * GREATEST skip nulls, hence the CASE.
 */
const WIDEN_DIRTY = `lo = CASE WHEN rollup_dirty.lo IS NULL THEN NULL ELSE LEAST(rollup_dirty.lo, excluded.lo) END,
  hi = CASE WHEN rollup_dirty.hi IS NULL THEN NULL ELSE GREATEST(rollup_dirty.hi, excluded.hi) END`;

export interface PostgresOptions {
  /** Schema for the tables (search_path); created when missing. */
  schema?: string;
  /** Pool size. Default 4. */
  max?: number;
  /** Connection timeout (ms). Default 5000. */
  connectTimeoutMs?: number;
}

// int8 (counts, times, ns) as JS numbers: every value we store is below 2^53. Per pool, not pg's global.
const INT8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8 && format !== 'binary'
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/**
 * Migrations under a transaction-scoped advisory lock: agents opening one database at once apply each once.
 * `migrations` is for tests that build a database as an older release left it.
 */
export async function migratePostgres(
  pool: pg.Pool,
  schema?: string,
  migrations: readonly PostgresMigration[] = postgresMigrations,
): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('BEGIN');
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('coalmine.schema_migrations'))`);
    // Under the lock: CREATE SCHEMA IF NOT EXISTS is not safe against a concurrent twin on its own.
    if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)',
    );
    const have = new Set(
      (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map(
        (r) => r.version,
      ),
    );
    for (const m of migrations) {
      if (have.has(m.version)) continue;
      await client.query(m.sql);
      await m.run?.(client);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        m.version,
        m.name,
        Date.now(),
      ]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  return applied;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** PostgreSQL through a pg Pool: one statement per batch (unnest of column arrays), one transaction. */
export class PostgresBackend implements Backend {
  readonly engine = 'postgres' as const;
  private readonly sids = new Map<string, number>();
  private closed = false;

  private constructor(private readonly pool: pg.Pool) {}

  static async open(url: string, opts: PostgresOptions = {}): Promise<PostgresBackend> {
    if (opts.schema !== undefined && !SCHEMA_NAME.test(opts.schema))
      throw new Error(`postgres schema "${opts.schema}": use lower-case letters, digits and _ (at most 63)`);
    const pool = new pg.Pool({
      connectionString: url,
      max: opts.max ?? 4,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
      types,
      ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
    });
    // A pooled client that loses its connection emits 'error' on the pool; the next query reconnects.
    pool.on('error', () => undefined);
    try {
      await migratePostgres(pool, opts.schema);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return new PostgresBackend(pool);
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  private async sidsFor(
    type: SeriesCode,
    keys: Iterable<[string, string, string]>,
  ): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const [key, kind, target] of keys) {
      const k = `${type}\u0000${key}\u0000${kind}\u0000${target}`;
      let id = this.sids.get(k);
      if (id === undefined) {
        const ins = await this.pool.query<{ id: number }>(
          'INSERT INTO series (type, key, kind, target) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id',
          [type, key, kind, target],
        );
        id =
          ins.rows[0]?.id ??
          (
            await this.pool.query<{ id: number }>(
              'SELECT id FROM series WHERE type = $1 AND key = $2 AND kind = $3 AND target = $4',
              [type, key, kind, target],
            )
          ).rows[0]!.id;
        this.sids.set(k, id);
      }
      out.set(k, id);
    }
    return out;
  }

  async seriesIds(type: SeriesCode, key: string): Promise<number[]> {
    const r = await this.pool.query<{ id: number }>(
      'SELECT id FROM series WHERE type = $1 AND key = $2 ORDER BY id',
      [type, key],
    );
    return r.rows.map((x) => x.id);
  }

  private async markDirty(c: pg.PoolClient, type: SeriesCode, dirty: DirtyBlocks): Promise<void> {
    const sids: number[] = [];
    const blocks: number[] = [];
    const los: number[] = [];
    const his: number[] = [];
    // Sorted, so two agents marking the same blocks lock them in the same order (no deadlock).
    for (const sid of [...dirty.keys()].sort((a, b) => a - b))
      for (const [b, { lo, hi }] of [...dirty.get(sid)!].sort(([x], [y]) => x - y)) {
        sids.push(sid);
        blocks.push(b);
        los.push(lo);
        his.push(hi);
      }
    await c.query(
      `INSERT INTO rollup_dirty (sid, tier, block, type, lo, hi)
       SELECT s, 1, b, $3, l, h FROM unnest($1::int[], $2::int8[], $4::int8[], $5::int8[]) AS u(s, b, l, h)
       ON CONFLICT (tier, sid, block) DO UPDATE SET ${WIDEN_DIRTY}`,
      [sids, blocks, type, los, his],
    );
  }

  async insertProbes(records: readonly ProbeRecord[]): Promise<void> {
    const keys = new Map<string, [string, string, string]>();
    for (const r of records)
      keys.set(`p\u0000${r.name}\u0000${r.kind}\u0000${r.target}`, [r.name, r.kind, r.target]);
    const ids = await this.sidsFor('p', keys.values());
    const dirty: DirtyBlocks = new Map();
    const runs = records.map((r) => {
      const sid = ids.get(`p\u0000${r.name}\u0000${r.kind}\u0000${r.target}`)!;
      const run = toStoredRun(r);
      addDirty(dirty, sid, run.time, HOUR);
      return { sid, run };
    });
    const chunks = toProbeChunks(runs);
    await this.tx(async (c) => {
      await insertProbeChunks(c, chunks);
      await this.markDirty(c, 'p', dirty);
    });
  }

  async insertFlows(records: readonly FlowRecord[]): Promise<void> {
    const keyOf = (r: FlowRecord) =>
      `f\u0000${flowKey(r.canary, r.coalminer)}\u0000${r.transport}\u0000${r.region}`;
    const keys = new Map<string, [string, string, string]>();
    for (const r of records) keys.set(keyOf(r), [flowKey(r.canary, r.coalminer), r.transport, r.region]);
    const ids = await this.sidsFor('f', keys.values());
    const cols: number[][] = Array.from({ length: 11 }, () => []);
    const runIds: string[] = [];
    const latency: Buffer[] = [];
    const dirty: DirtyBlocks = new Map();
    for (const r of records) {
      const sid = ids.get(keyOf(r))!;
      const time = Math.round(r.time);
      const row = [
        sid,
        time,
        r.intervalMs,
        r.received,
        r.lost,
        r.duplicated,
        r.reordered,
        r.late,
        r.sendFailed,
        r.inFlight,
        r.droppedLocally,
      ];
      row.forEach((v, k) => cols[k]!.push(k < 2 ? v : nonNegInt(v)));
      runIds.push(r.runId);
      latency.push(encodeHistogram(r.latency));
      addDirty(dirty, sid, time, HOUR);
    }
    await this.tx(async (c) => {
      await c.query(
        `INSERT INTO flow_raw (sid, time, interval_ms, received, lost, duplicated, reordered, late, send_failed, in_flight,
                               dropped_locally, run_id, latency)
         SELECT * FROM unnest($1::int[], $2::int8[], $3::int[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int8[],
                              $9::int8[], $10::int8[], $11::int8[], $12::text[], $13::bytea[])`,
        [...cols, runIds, latency],
      );
      await this.markDirty(c, 'f', dirty);
    });
  }

  async insertSchedules(records: readonly ScheduleRecord[]): Promise<void> {
    const keyOf = (r: ScheduleRecord) => `c\u0000${flowKey(r.canary, r.coalminer)}\u0000${r.transport}\u0000`;
    const keys = new Map<string, [string, string, string]>();
    for (const r of records) keys.set(keyOf(r), [flowKey(r.canary, r.coalminer), r.transport, '']);
    const ids = await this.sidsFor('c', keys.values());
    const cols: number[][] = Array.from({ length: 7 }, () => []);
    const runIds: string[] = [];
    const dirty: DirtyBlocks = new Map();
    for (const r of records) {
      const sid = ids.get(keyOf(r))!;
      const time = Math.round(r.time);
      const row = [
        sid,
        time,
        nonNegInt(r.intervalMs),
        nonNegInt(r.due),
        nonNegInt(r.attempted),
        nonNegInt(r.behind),
        secondsToMs(r.behindSeconds),
      ];
      row.forEach((v, k) => cols[k]!.push(v));
      runIds.push(r.runId);
      addDirty(dirty, sid, time, HOUR);
    }
    await this.tx(async (c) => {
      await c.query(
        `INSERT INTO schedule_raw (sid, time, interval_ms, due, attempted, behind, behind_ms, run_id)
         SELECT * FROM unnest($1::int[], $2::int8[], $3::int[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::text[])`,
        [...cols, runIds],
      );
      await this.markDirty(c, 'c', dirty);
    });
  }

  /** Chunks overlapping [from, to): a chunk lies within one hour, so its t0 is at most an hour before from. */
  async readProbeChunks(
    sids: readonly number[],
    from: number,
    to: number,
    c: pg.ClientBase = this.pool as unknown as pg.ClientBase,
  ): Promise<StoredChunk[]> {
    const r = await c.query<StoredChunk>(
      `SELECT sid, id, t0, n, data FROM probe_chunks WHERE sid = ANY($1::int[]) AND t0 >= $2 AND t0 < $3 AND t1 >= $4
       ORDER BY t0, id`,
      [sids, floorTo(from, HOUR), to, from],
    );
    return r.rows;
  }

  async firstProbeChunk(sids: readonly number[], from: number, to: number): Promise<number | null> {
    const r = await this.pool.query<{ t: number | null }>(
      'SELECT min(t0) AS t FROM probe_chunks WHERE sid = ANY($1::int[]) AND t0 >= $2 AND t0 < $3',
      [sids, from, to],
    );
    return r.rows[0]?.t ?? null;
  }

  async seriesLabels(sids: readonly number[]): Promise<Map<number, SeriesLabels>> {
    const r = await this.pool.query<{ id: number } & SeriesLabels>(
      'SELECT id, key, kind, target FROM series WHERE id = ANY($1::int[])',
      [sids],
    );
    return new Map(r.rows.map((x) => [x.id, { key: x.key, kind: x.kind, target: x.target }]));
  }

  async readFlowRaw(
    sids: readonly number[],
    from: number,
    to: number,
    c: pg.ClientBase = this.pool as unknown as pg.ClientBase,
  ): Promise<RawFlowRow[]> {
    const r = await c.query<{ time: number; c: number[]; latency: Buffer }>(
      `SELECT time, ARRAY[received, lost, duplicated, reordered, late, send_failed, in_flight, dropped_locally]::float8[] AS c,
              latency
       FROM flow_raw WHERE sid = ANY($1::int[]) AND time >= $2 AND time < $3 ORDER BY time`,
      [sids, from, to],
    );
    return r.rows.map((x) => ({ time: x.time, counts: x.c, hist: decodeHistogram(x.latency) }));
  }

  async readScheduleRaw(
    sids: readonly number[],
    from: number,
    to: number,
    c: pg.ClientBase = this.pool as unknown as pg.ClientBase,
  ): Promise<RawFlowRow[]> {
    const r = await c.query<{ time: number; c: number[] }>(
      `SELECT time, ARRAY[due, attempted, behind, behind_ms]::float8[] AS c
       FROM schedule_raw WHERE sid = ANY($1::int[]) AND time >= $2 AND time < $3 ORDER BY time`,
      [sids, from, to],
    );
    return r.rows.map((x) => ({ time: x.time, counts: x.c, hist: new LatencyHistogram() }));
  }

  async probeDirtyUntil(): Promise<number | undefined> {
    return probeDirtyUntil(this.pool);
  }

  async readFlowOverviewRows(from: number, to: number): Promise<KeyedFlowRow[]> {
    return readFlowRows(this.pool, from, to);
  }

  async readProbeBlocks(fromBlock: number, toBlock: number): Promise<KeyedBlock[]> {
    return readProbeBlocks(this.pool, fromBlock, toBlock);
  }

  async readBlocks(
    sids: readonly number[],
    tier: number,
    fromBlock: number,
    toBlock: number,
  ): Promise<StoredBlock[]> {
    const r = await this.pool.query<{ block: number; data: Buffer }>(
      'SELECT block, data FROM rollup WHERE sid = ANY($1::int[]) AND tier = $2 AND block >= $3 AND block < $4 ORDER BY block',
      [sids, tier, fromBlock, toBlock],
    );
    return r.rows;
  }

  async processDirty(
    tier: 1 | 2,
    minBlock: number,
    build: BlockBuilders,
    stop?: () => boolean,
  ): Promise<number> {
    let done = 0;
    // A store that is closing stops between transactions; the rest stays dirty for the next start.
    while (!stop?.()) {
      const n = await this.tx(async (c) => {
        // SKIP LOCKED: agents sharing the database roll up different blocks at once.
        const picked = await c.query<DirtyRow>(
          `DELETE FROM rollup_dirty WHERE (tier, sid, block) IN (
             SELECT tier, sid, block FROM rollup_dirty WHERE tier = $1 ORDER BY sid, block LIMIT 100 FOR UPDATE SKIP LOCKED)
           RETURNING sid, block, type, lo, hi`,
          [tier],
        );
        done += await this.rollUpPicked(
          c,
          tier,
          picked.rows.filter((e) => e.block >= minBlock),
          build,
        );
        return picked.rows.length;
      });
      if (n === 0) return done;
    }
    return done;
  }

  /**
   * Rolls up one pick of dirty blocks in a few statements for all of them, not several per block: with
   * 10,000 series the rollup after an hour made seven or more round trips per series one after another
   * (the stored block, the advisory lock, the chunks, the earlier chunk, delete, insert, the tier-2 mark,
   * the block) and took 149 s under probing (bench/scale.mjs). Returns how many blocks it rolled up.
   */
  private async rollUpPicked(
    c: pg.PoolClient,
    tier: 1 | 2,
    entries: readonly DirtyRow[],
    build: BlockBuilders,
  ): Promise<number> {
    if (entries.length === 0) return 0;
    const [blockMs, bucketMs] = tier === 1 ? [HOUR, MINUTE] : [DAY, HOUR];
    const key = (sid: number, block: number) => `${sid}:${block}`;
    const work = entries.map((e) => {
      const range = dirtyRange(e.block, blockMs, bucketMs, e.lo, e.hi);
      return { e, range, from: range?.from ?? e.block, to: range?.to ?? e.block + blockMs };
    });
    // Only the buckets written since the last rollup are rebuilt, merged into the stored block. FOR
    // UPDATE, in (sid, block) order as the pick is: another agent rebuilding a later part of the same
    // block waits for this one, then merges into what this one wrote.
    const merging = work.filter((w) => w.range);
    const stored = new Map<string, Buffer>();
    if (merging.length > 0) {
      const r = await c.query<{ sid: number; block: number; data: Buffer }>(
        `SELECT sid, block, data FROM rollup
         WHERE tier = $3 AND (sid, block) IN (SELECT * FROM unnest($1::int[], $2::int8[]))
         ORDER BY sid, block FOR UPDATE`,
        [merging.map((w) => w.e.sid), merging.map((w) => w.e.block), tier],
      );
      for (const row of r.rows) stored.set(key(row.sid, Number(row.block)), row.data);
    }
    const base = (w: (typeof work)[number]): BlockBase | undefined => {
      const data = w.range && stored.get(key(w.e.sid, w.e.block));
      return w.range && data ? { data, ...w.range } : undefined;
    };

    const built: { sid: number; block: number; data: Uint8Array | null }[] = [];
    if (tier === 1) {
      const probes = work.filter((w) => w.e.type === 'p');
      const rows = await this.probeRowsCompactingAll(
        c,
        probes.map((w) => ({ sid: w.e.sid, from: w.from, to: w.to })),
      );
      probes.forEach((w, i) => {
        built.push({ sid: w.e.sid, block: w.e.block, data: build.probeHour(w.e.block, rows[i]!, base(w)) });
      });
      for (const w of work) {
        if (w.e.type === 'p') continue;
        const data =
          w.e.type === 'f'
            ? build.flowHour(w.e.block, await this.readFlowRaw([w.e.sid], w.from, w.to, c), base(w))
            : build.scheduleHour(w.e.block, await this.readScheduleRaw([w.e.sid], w.from, w.to, c), base(w));
        built.push({ sid: w.e.sid, block: w.e.block, data });
      }
      // The days these hours fall in, one mark each (a statement may not touch one row twice).
      const days = new Map<string, { sid: number; day: number; type: SeriesCode; lo: number; hi: number }>();
      for (const { e } of work) {
        const day = floorTo(e.block, DAY);
        const k = `${key(e.sid, day)}:${e.type}`;
        const m = days.get(k);
        if (m) {
          m.lo = Math.min(m.lo, e.block);
          m.hi = Math.max(m.hi, e.block);
        } else days.set(k, { sid: e.sid, day, type: e.type, lo: e.block, hi: e.block });
      }
      const marks = [...days.values()];
      await c.query(
        `INSERT INTO rollup_dirty (sid, tier, block, type, lo, hi)
         SELECT s, 2, b, t, l, h FROM unnest($1::int[], $2::int8[], $3::text[], $4::int8[], $5::int8[]) AS u(s, b, t, l, h)
         ON CONFLICT (tier, sid, block) DO UPDATE SET ${WIDEN_DIRTY}`,
        [
          marks.map((m) => m.sid),
          marks.map((m) => m.day),
          marks.map((m) => m.type),
          marks.map((m) => m.lo),
          marks.map((m) => m.hi),
        ],
      );
    } else {
      // The hour blocks of every day in the pick, one query per day.
      const hours = new Map<number, StoredBlock[]>();
      for (const day of new Set(work.map((w) => w.e.block))) {
        const inDay = work.filter((w) => w.e.block === day);
        const r = await c.query<StoredBlock & { sid: number }>(
          `SELECT sid, block, data FROM rollup WHERE sid = ANY($1::int[]) AND tier = 1 AND block >= $2 AND block < $3
           ORDER BY sid, block`,
          [[...new Set(inDay.map((w) => w.e.sid))], Math.min(...inDay.map((w) => w.from)), day + DAY],
        );
        for (const row of r.rows) {
          const list = hours.get(row.sid) ?? [];
          list.push({ block: row.block, data: row.data });
          hours.set(row.sid, list);
        }
      }
      for (const w of work) {
        const mine = (hours.get(w.e.sid) ?? []).filter((h) => h.block >= w.from && h.block < w.to);
        built.push({ sid: w.e.sid, block: w.e.block, data: build.day(w.e.type, w.e.block, mine, base(w)) });
      }
    }

    const kept = built.filter((b) => b.data !== null);
    if (kept.length > 0)
      await c.query(
        `INSERT INTO rollup (sid, tier, block, data)
         SELECT s, $4, b, d FROM unnest($1::int[], $2::int8[], $3::bytea[]) AS u(s, b, d)
         ON CONFLICT (sid, tier, block) DO UPDATE SET data = excluded.data`,
        [kept.map((b) => b.sid), kept.map((b) => b.block), kept.map((b) => Buffer.from(b.data!)), tier],
      );
    const emptied = built.filter((b) => b.data === null);
    if (emptied.length > 0)
      await c.query(
        'DELETE FROM rollup WHERE tier = $3 AND (sid, block) IN (SELECT * FROM unnest($1::int[], $2::int8[]))',
        [emptied.map((b) => b.sid), emptied.map((b) => b.block), tier],
      );
    return entries.length;
  }

  /**
   * The runs of each (series, range) for the rollup, in the order given; the chunks that hold them are
   * merged into one on the way (the writer writes one per batch, a second's worth at 1 s; merged, a
   * minute of a series is one chunk). Only under the series' advisory lock: two agents merging the same
   * chunks at once would each write the runs again; without it, only read. For all of them at once: one
   * lock query, one chunk read per hour, one look-up of the earlier chunks, one delete and one insert.
   */
  private async probeRowsCompactingAll(
    c: pg.PoolClient,
    wanted: readonly { sid: number; from: number; to: number }[],
  ): Promise<RawProbeRow[][]> {
    if (wanted.length === 0) return [];
    const sids = [...new Set(wanted.map((w) => w.sid))].sort((a, b) => a - b);
    const lockRows = await c.query<{ sid: number; ok: boolean }>(
      `SELECT s AS sid, pg_try_advisory_xact_lock(hashtext('coalmine.probe_chunks'), s) AS ok
       FROM unnest($1::int[]) AS s ORDER BY s`,
      [sids],
    );
    const locked = new Set(lockRows.rows.filter((r) => r.ok).map((r) => r.sid));
    // The chunks of each hour in the pick, for its series together (a range lies within its hour).
    // As readProbeChunks reads them for one range, with t1 to tell each range's own apart.
    const byHour = new Map<number, (StoredChunk & { t1: number })[]>();
    for (const hour of new Set(wanted.map((w) => floorTo(w.from, HOUR)))) {
      const inHour = wanted.filter((w) => floorTo(w.from, HOUR) === hour);
      const r = await c.query<StoredChunk & { t1: number }>(
        `SELECT sid, id, t0, t1, n, data FROM probe_chunks
         WHERE sid = ANY($1::int[]) AND t0 >= $2 AND t0 < $3 AND t1 >= $4 ORDER BY t0, id`,
        [
          [...new Set(inHour.map((w) => w.sid))],
          hour,
          Math.max(...inHour.map((w) => w.to)),
          Math.min(...inHour.map((w) => w.from)),
        ],
      );
      byHour.set(hour, r.rows);
    }
    const chunksOf = wanted.map((w) =>
      byHour
        .get(floorTo(w.from, HOUR))!
        .filter((ch) => ch.sid === w.sid && ch.t0 < w.to && Number(ch.t1) >= w.from),
    );
    // The series' latest earlier chunk of the hour, where the minutes rolled up are too few to fill one.
    const growing = wanted
      .map((w, i) => ({ w, i }))
      .filter(({ w, i }) => locked.has(w.sid) && growsPrevious(chunksOf[i]!));
    const prev = new Map<number, StoredChunk>();
    if (growing.length > 0) {
      const r = await c.query<StoredChunk & { i: number }>(
        `SELECT k.i, p.sid, p.id, p.t0, p.n, p.data
         FROM unnest($1::int[], $2::int8[], $3::int8[], $4::int[]) AS k(sid, lo, hi, i)
         CROSS JOIN LATERAL (
           SELECT sid, id, t0, n, data FROM probe_chunks WHERE sid = k.sid AND t0 >= k.lo AND t1 < k.hi
           ORDER BY t1 DESC, id DESC LIMIT 1) AS p`,
        [
          growing.map(({ w }) => w.sid),
          growing.map(({ w }) => floorTo(w.from, HOUR)),
          growing.map(({ w }) => w.from),
          growing.map(({ i }) => i),
        ],
      );
      for (const { i, ...chunk } of r.rows) prev.set(Number(i), chunk);
    }
    const replaced: StoredChunk[] = [];
    const merged: ProbeChunkRow[] = [];
    wanted.forEach((w, i) => {
      if (!locked.has(w.sid)) return;
      const m = mergeChunks(w.sid, chunksOf[i]!, prev.get(i));
      if (!m) return;
      replaced.push(...m.replaced);
      merged.push(m.merged);
    });
    if (replaced.length > 0) {
      await c.query(
        'DELETE FROM probe_chunks WHERE (sid, t0, id) IN (SELECT * FROM unnest($1::int[], $2::int8[], $3::int8[]))',
        [replaced.map((x) => x.sid), replaced.map((x) => x.t0), replaced.map((x) => x.id)],
      );
      await insertProbeChunks(c, merged);
    }
    return wanted.map((w, i) => runsOf(chunksOf[i]!, w.from, w.to).map(toRawProbeRow));
  }

  async insertAlertEvents(events: readonly AlertEventRecord[]): Promise<void> {
    // WITH ORDINALITY ... ORDER BY: ids are drawn in array order, which breaks ties on (rule, at).
    await this.pool.query(
      `INSERT INTO alert_events (rule, from_state, to_state, at, value)
       SELECT r, f, t, a, v FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::float8[])
         WITH ORDINALITY AS u(r, f, t, a, v, n)
       ORDER BY n`,
      [
        events.map((e) => e.rule),
        events.map((e) => e.from),
        events.map((e) => e.to),
        events.map((e) => e.at),
        events.map((e) => e.value),
      ],
    );
  }

  async readAlertEvents(perRule: number): Promise<AlertEventRecord[]> {
    // Each rule's newest rows come from a backward walk of the (rule, at) index, cut off at perRule.
    const r = await this.pool.query<AlertEventRow>(
      `SELECT e.id, e.rule, e.from_state, e.to_state, e.at, e.value
       FROM (SELECT DISTINCT rule FROM alert_events) AS k
       CROSS JOIN LATERAL (
         SELECT id, rule, from_state, to_state, at, value FROM alert_events
         WHERE rule = k.rule ORDER BY at DESC, id DESC LIMIT $1) AS e
       ORDER BY e.at, e.id`,
      [perRule],
    );
    return r.rows.map(toAlertEvent);
  }

  async upsertSilence(s: SilenceRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO silences (id, matchers, starts_at, ends_at, comment, created_by) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (id) DO UPDATE SET matchers = excluded.matchers, starts_at = excluded.starts_at,
         ends_at = excluded.ends_at, comment = excluded.comment, created_by = excluded.created_by`,
      [s.id, JSON.stringify(s.matchers), s.startsAt, s.endsAt, s.comment, s.createdBy],
    );
  }

  async readSilences(endedAfter: number): Promise<SilenceRecord[]> {
    // COLLATE "C": ids that tie on startsAt sort bytewise, as SQLite sorts them, whatever the database's locale.
    const r = await this.pool.query<SilenceRow>(
      `SELECT id, matchers, starts_at, ends_at, comment, created_by FROM silences
       WHERE ends_at >= $1 ORDER BY starts_at DESC, id COLLATE "C"`,
      [endedAfter],
    );
    return r.rows.map(toSilence);
  }

  async applyRetention(c: RetentionCutoffs): Promise<void> {
    const sids = (await this.pool.query<{ id: number }>('SELECT id FROM series ORDER BY id')).rows.map(
      (r) => r.id,
    );
    // Set-based, a slice of series per statement: `sid = ANY` walks the (sid, time) index for each, and
    // 10,000 series take 5 statements per slice instead of 5 per series (50,000 round trips a minute).
    for (let k = 0; k < sids.length; k += RETENTION_SLICE) {
      const slice = sids.slice(k, k + RETENTION_SLICE);
      // A chunk goes when its last run is past the cutoff (runs of at most one hour, usually a minute).
      await this.pool.query('DELETE FROM probe_chunks WHERE sid = ANY($1::int[]) AND t0 < $2 AND t1 < $2', [
        slice,
        c.raw,
      ]);
      for (const table of ['flow_raw', 'schedule_raw'])
        await this.pool.query(`DELETE FROM ${table} WHERE sid = ANY($1::int[]) AND time < $2`, [
          slice,
          c.raw,
        ]);
      // A block goes when its whole span is older than the cutoff.
      await this.pool.query('DELETE FROM rollup WHERE sid = ANY($1::int[]) AND tier = 1 AND block < $2', [
        slice,
        c.m1 - HOUR,
      ]);
      await this.pool.query('DELETE FROM rollup WHERE sid = ANY($1::int[]) AND tier = 2 AND block < $2', [
        slice,
        c.h1 - DAY,
      ]);
    }
    // Per rule too: at alone has no index, (rule, at) has.
    const rules = (await this.pool.query<{ rule: string }>('SELECT DISTINCT rule FROM alert_events')).rows;
    for (const { rule } of rules)
      await this.pool.query('DELETE FROM alert_events WHERE rule = $1 AND at < $2', [rule, c.alerts]);
    await this.pool.query('DELETE FROM silences WHERE ends_at < $1', [c.silences]);
  }

  async getMeta(key: string): Promise<number | undefined> {
    const r = await this.pool.query<{ value: number }>('SELECT value FROM meta WHERE key = $1', [key]);
    return r.rows[0]?.value;
  }

  async setMeta(key: string, value: number): Promise<void> {
    await this.pool.query(
      'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = GREATEST(meta.value, excluded.value)',
      [key, value],
    );
  }

  async integrityCheck(): Promise<string> {
    // PostgreSQL keeps its own consistency; what we can check is that our schema is whole and readable.
    const r = await this.pool.query<{ version: number }>(
      'SELECT max(version) AS version FROM schema_migrations',
    );
    const want = postgresMigrations.at(-1)!.version;
    if (r.rows[0]?.version !== want)
      return `schema at version ${r.rows[0]?.version ?? 'none'}, expected ${want}`;
    for (const t of [
      'series',
      'probe_chunks',
      'flow_raw',
      'schedule_raw',
      'rollup',
      'rollup_dirty',
      'meta',
      'alert_events',
      'silences',
    ])
      await this.pool.query(`SELECT 1 FROM ${t} LIMIT 1`);
    return 'ok';
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
