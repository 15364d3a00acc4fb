import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { setImmediate as setImmediatePromise } from 'node:timers/promises';
import { floorTo, HOUR, DAY, MINUTE, type RawFlowRow, type SeriesCode } from '../aggregate.js';
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
import { decodeHistogram, encodeHistogram } from '../codec.js';
import { LatencyHistogram } from '../../stats/histogram.js';
import type { AlertEventRecord, FlowRecord, ProbeRecord, ScheduleRecord, SilenceRecord } from '../types.js';
import { sqliteMigrations, type SqliteMigration } from './migrations.js';
import { ShmGuard, ShmTruncatedError } from './shm-guard.js';
import { probeDirtyUntil, readFlowRows, readProbeBlocks } from './overview.js';
import type { KeyedBlock } from '../overview.js';
import type { KeyedFlowRow } from '../flow-overview.js';

/** How long one rollup transaction may hold the agent's thread before it lets the event loop go. */
const ROLLUP_SLICE_MS = 5;

/** A rollup_dirty row: lo and hi are null on marks from before migration 4 (the whole block). */
interface DirtyRow {
  sid: number;
  block: number;
  type: SeriesCode;
  lo: number | null;
  hi: number | null;
}

export interface SqliteOptions {
  /**
   * How long a write waits for another connection's lock before failing (ms). Kept short: better-sqlite3
   * waits synchronously, on the event loop, and the batched writer retries a failed batch anyway.
   */
  busyTimeoutMs?: number;
}

type Stmt = Database.Statement<unknown[]>;

/**
 * Applies pending migrations in one IMMEDIATE transaction, so two processes opening at once apply each once.
 * `migrations` is for tests that build a database as an older release left it.
 */
export function migrateSqlite(
  db: Database.Database,
  migrations: readonly SqliteMigration[] = sqliteMigrations,
): number[] {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
  );
  const applied: number[] = [];
  db.transaction(() => {
    const have = new Set(
      (db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map(
        (r) => r.version,
      ),
    );
    for (const m of migrations) {
      if (have.has(m.version)) continue;
      db.exec(m.sql);
      m.run?.(db);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        m.version,
        m.name,
        Date.now(),
      );
      applied.push(m.version);
    }
  }).immediate();
  return applied;
}

/** SQLite through better-sqlite3: WAL, synchronous=NORMAL, prepared statements, one transaction per batch. */
export class SqliteBackend implements Backend {
  readonly engine = 'sqlite' as const;
  private readonly conn: Database.Database;
  private readonly shm: ShmGuard;
  private readonly sids = new Map<string, number>();
  private readonly stmts: Record<string, Stmt> = {};
  private closed = false;

  constructor(
    readonly file: string,
    opts: SqliteOptions = {},
  ) {
    mkdirSync(dirname(file), { recursive: true });
    this.conn = new Database(file, { timeout: opts.busyTimeoutMs ?? 50 });
    try {
      this.conn.pragma('journal_mode = WAL');
      this.conn.pragma('synchronous = NORMAL');
      // SQLite's page cache is the agent's largest malloc: at its default 2 MiB it grew the agent's RSS
      // by 3 MB in its first minute (bench/probes.mjs, section memory). The pages it drops stay in the
      // OS's file cache, and what the agent reads most (the current minute and hour) is small.
      this.conn.pragma('cache_size = -512');
      migrateSqlite(this.conn);
    } catch (err) {
      this.conn.close();
      throw err;
    }
    this.shm = new ShmGuard(`${file}-shm`);
  }

  /** The connection, once the -shm file is known not to have shrunk (see ShmGuard). */
  private get db(): Database.Database {
    this.shm.check();
    return this.conn;
  }

  private stmt(sql: string): Stmt {
    this.shm.check();
    return (this.stmts[sql] ??= this.conn.prepare(sql));
  }

  private sid(type: SeriesCode, key: string, kind: string, target: string): number {
    const k = `${type}\u0000${key}\u0000${kind}\u0000${target}`;
    let id = this.sids.get(k);
    if (id === undefined) {
      this.stmt(
        'INSERT INTO series (type, key, kind, target) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
      ).run(type, key, kind, target);
      id = (
        this.stmt('SELECT id FROM series WHERE type = ? AND key = ? AND kind = ? AND target = ?').get(
          type,
          key,
          kind,
          target,
        ) as { id: number }
      ).id;
      this.sids.set(k, id);
    }
    return id;
  }

  async seriesIds(type: SeriesCode, key: string): Promise<number[]> {
    return (
      this.stmt('SELECT id FROM series WHERE type = ? AND key = ? ORDER BY id').all(type, key) as {
        id: number;
      }[]
    ).map((r) => r.id);
  }

  private markDirty(type: SeriesCode, dirty: DirtyBlocks): void {
    // min() of SQLite is null when either side is: a whole-block mark (null) stays whole.
    const ins = this.stmt(
      `INSERT INTO rollup_dirty (sid, tier, block, type, lo, hi) VALUES (?, 1, ?, ?, ?, ?)
       ON CONFLICT DO UPDATE SET lo = min(lo, excluded.lo), hi = max(hi, excluded.hi)`,
    );
    for (const [sid, blocks] of dirty) for (const [b, { lo, hi }] of blocks) ins.run(sid, b, type, lo, hi);
  }

  async insertProbes(records: readonly ProbeRecord[]): Promise<void> {
    this.db.transaction(() => {
      const dirty: DirtyBlocks = new Map();
      const runs = records.map((r) => {
        const sid = this.sid('p', r.name, r.kind, r.target);
        const run = toStoredRun(r);
        addDirty(dirty, sid, run.time, HOUR);
        return { sid, run };
      });
      for (const c of toProbeChunks(runs)) this.insertChunk(c);
      this.markDirty('p', dirty);
    })();
  }

  private insertChunk(c: ProbeChunkRow): void {
    this.stmt('INSERT INTO probe_chunks (sid, t0, t1, n, data) VALUES (?, ?, ?, ?, ?)').run(
      c.sid,
      c.t0,
      c.t1,
      c.n,
      c.data,
    );
  }

  async insertFlows(records: readonly FlowRecord[]): Promise<void> {
    const ins = this.stmt(
      `INSERT INTO flow_raw (sid, time, interval_ms, run_id, received, lost, duplicated, reordered, late, send_failed, in_flight, dropped_locally, latency)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.db.transaction(() => {
      const dirty: DirtyBlocks = new Map();
      for (const r of records) {
        const sid = this.sid('f', flowKey(r.canary, r.coalminer), r.transport, r.region);
        const time = Math.round(r.time);
        ins.run(
          sid,
          time,
          nonNegInt(r.intervalMs),
          r.runId,
          nonNegInt(r.received),
          nonNegInt(r.lost),
          nonNegInt(r.duplicated),
          nonNegInt(r.reordered),
          nonNegInt(r.late),
          nonNegInt(r.sendFailed),
          nonNegInt(r.inFlight),
          nonNegInt(r.droppedLocally),
          encodeHistogram(r.latency),
        );
        addDirty(dirty, sid, time, HOUR);
      }
      this.markDirty('f', dirty);
    })();
  }

  async insertSchedules(records: readonly ScheduleRecord[]): Promise<void> {
    const ins = this.stmt(
      `INSERT INTO schedule_raw (sid, time, interval_ms, run_id, due, attempted, behind, behind_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.db.transaction(() => {
      const dirty: DirtyBlocks = new Map();
      for (const r of records) {
        const sid = this.sid('c', flowKey(r.canary, r.coalminer), r.transport, '');
        const time = Math.round(r.time);
        ins.run(
          sid,
          time,
          nonNegInt(r.intervalMs),
          r.runId,
          nonNegInt(r.due),
          nonNegInt(r.attempted),
          nonNegInt(r.behind),
          secondsToMs(r.behindSeconds),
        );
        addDirty(dirty, sid, time, HOUR);
      }
      this.markDirty('c', dirty);
    })();
  }

  private inList(sids: readonly number[]): string {
    // Ids are our own integers, so inlining them is safe and keeps one statement per distinct list.
    return sids.map((s) => String(Math.trunc(s))).join(',');
  }

  async readProbeChunks(sids: readonly number[], from: number, to: number): Promise<StoredChunk[]> {
    return this.readChunksSync(this.inList(sids), from, to);
  }

  /** Chunks overlapping [from, to): a chunk lies within one hour, so its t0 is at most an hour before from. */
  private readChunksSync(inList: string, from: number, to: number): StoredChunk[] {
    return this.stmt(
      `SELECT sid, id, t0, n, data FROM probe_chunks WHERE sid IN (${inList}) AND t0 >= ? AND t0 < ? AND t1 >= ?
       ORDER BY t0, id`,
    ).all(floorTo(from, HOUR), to, from) as StoredChunk[];
  }

  async firstProbeChunk(sids: readonly number[], from: number, to: number): Promise<number | null> {
    const row = this.stmt(
      `SELECT min(t0) AS t FROM probe_chunks WHERE sid IN (${this.inList(sids)}) AND t0 >= ? AND t0 < ?`,
    ).get(from, to) as { t: number | null };
    return row.t;
  }

  async seriesLabels(sids: readonly number[]): Promise<Map<number, SeriesLabels>> {
    const rows = this.stmt(
      `SELECT id, key, kind, target FROM series WHERE id IN (${this.inList(sids)})`,
    ).all() as ({
      id: number;
    } & SeriesLabels)[];
    return new Map(rows.map((r) => [r.id, { key: r.key, kind: r.kind, target: r.target }]));
  }

  async readFlowRaw(sids: readonly number[], from: number, to: number): Promise<RawFlowRow[]> {
    const rows = this.stmt(
      `SELECT ${FLOW_COLUMNS} FROM flow_raw WHERE sid IN (${this.inList(sids)}) AND time >= ? AND time < ? ORDER BY time`,
    )
      .raw()
      .all(from, to) as FlowRawRow[];
    return rows.map(toFlowRow);
  }

  async readScheduleRaw(sids: readonly number[], from: number, to: number): Promise<RawFlowRow[]> {
    const rows = this.stmt(
      `SELECT ${SCHEDULE_COLUMNS} FROM schedule_raw WHERE sid IN (${this.inList(sids)}) AND time >= ? AND time < ? ORDER BY time`,
    )
      .raw()
      .all(from, to) as number[][];
    return rows.map(toScheduleRow);
  }

  async probeDirtyUntil(): Promise<number | undefined> {
    return probeDirtyUntil(this.db);
  }

  async readFlowOverviewRows(from: number, to: number): Promise<KeyedFlowRow[]> {
    return readFlowRows(this.db, from, to);
  }

  async readProbeBlocks(fromBlock: number, toBlock: number): Promise<KeyedBlock[]> {
    return readProbeBlocks(this.db, fromBlock, toBlock);
  }

  async readBlocks(
    sids: readonly number[],
    tier: number,
    fromBlock: number,
    toBlock: number,
  ): Promise<StoredBlock[]> {
    return (
      this.stmt(
        `SELECT block, data FROM rollup WHERE sid IN (${this.inList(sids)}) AND tier = ? AND block >= ? AND block < ? ORDER BY block`,
      ).all(tier, fromBlock, toBlock) as { block: number; data: Buffer }[]
    ).map((r) => ({ block: r.block, data: r.data }));
  }

  async processDirty(
    tier: 1 | 2,
    minBlock: number,
    build: BlockBuilders,
    stop?: () => boolean,
  ): Promise<number> {
    let done = 0;
    const pick = this.stmt(
      'SELECT sid, block, type, lo, hi FROM rollup_dirty WHERE tier = ? ORDER BY sid, block LIMIT 100',
    );
    const del = this.stmt('DELETE FROM rollup_dirty WHERE tier = ? AND sid = ? AND block = ?');
    const existing = this.stmt('SELECT data FROM rollup WHERE sid = ? AND tier = ? AND block = ?');
    const up = this.stmt(
      'INSERT INTO rollup (sid, tier, block, data) VALUES (?, ?, ?, ?) ON CONFLICT (sid, tier, block) DO UPDATE SET data = excluded.data',
    );
    const drop = this.stmt('DELETE FROM rollup WHERE sid = ? AND tier = ? AND block = ?');
    const parent = this.stmt(
      `INSERT INTO rollup_dirty (sid, tier, block, type, lo, hi) VALUES (?, 2, ?, ?, ?, ?)
       ON CONFLICT DO UPDATE SET lo = min(lo, excluded.lo), hi = max(hi, excluded.hi)`,
    );
    const hours = this.stmt(
      'SELECT block, data FROM rollup WHERE sid = ? AND tier = 1 AND block >= ? AND block < ? ORDER BY block',
    );
    const [blockMs, bucketMs] = tier === 1 ? [HOUR, MINUTE] : [DAY, HOUR];
    const batch = this.db.transaction((deadline: number) => {
      const entries = pick.all(tier) as DirtyRow[];
      let n = 0;
      for (const e of entries) {
        // SQLite runs on the agent's thread: stop when the slice's time is up, the rest stay dirty.
        if (n > 0 && performance.now() > deadline) break;
        n++;
        del.run(tier, e.sid, e.block);
        if (e.block < minBlock) continue;
        // Only the buckets written since the last rollup are rebuilt, merged into the stored block.
        const range = dirtyRange(e.block, blockMs, bucketMs, e.lo, e.hi);
        const stored = range && (existing.get(e.sid, tier, e.block) as { data: Uint8Array } | undefined);
        const base = stored ? { data: stored.data, ...range } : undefined;
        const from = base?.from ?? e.block;
        const to = base?.to ?? e.block + blockMs;
        let data: Uint8Array | null;
        if (tier === 1) {
          data =
            e.type === 'p'
              ? build.probeHour(e.block, this.probeRowsCompacting(e.sid, from, to), base)
              : e.type === 'f'
                ? build.flowHour(e.block, this.readFlowRawSync([e.sid], from, to), base)
                : build.scheduleHour(e.block, this.readScheduleRawSync([e.sid], from, to), base);
          parent.run(e.sid, floorTo(e.block, DAY), e.type, e.block, e.block);
        } else {
          data = build.day(e.type, e.block, hours.all(e.sid, from, to) as StoredBlock[], base);
        }
        if (data) up.run(e.sid, tier, e.block, data);
        else drop.run(e.sid, tier, e.block);
        done++;
      }
      return n;
    });
    // Slices of at most 100 blocks and about ROLLUP_SLICE_MS each, one transaction each, with the event
    // loop let go between them: probes and the API run while a long rollup goes on. A store that is
    // closing stops between slices; what is still dirty is rolled up after the next start.
    while (!stop?.() && batch.immediate(performance.now() + ROLLUP_SLICE_MS) > 0) await setImmediatePromise();
    return done;
  }

  // The async readers are thin wrappers; the rollup needs them inside a synchronous transaction.
  /**
   * The runs of [from, to) for the rollup; the chunks that hold them are merged into one on the way (the
   * writer writes one per batch, a second's worth at 1 s; merged, a minute of a series is one chunk).
   */
  private probeRowsCompacting(sid: number, from: number, to: number) {
    const chunks = this.readChunksSync(String(Math.trunc(sid)), from, to);
    const prev = growsPrevious(chunks)
      ? (this.stmt(
          `SELECT sid, id, t0, n, data FROM probe_chunks WHERE sid = ? AND t0 >= ? AND t1 < ?
       ORDER BY t1 DESC, id DESC LIMIT 1`,
        ).get(sid, floorTo(from, HOUR), from) as StoredChunk | undefined)
      : undefined;
    const merge = mergeChunks(sid, chunks, prev);
    if (merge) {
      const del = this.stmt('DELETE FROM probe_chunks WHERE id = ?');
      for (const c of merge.replaced) del.run(c.id);
      this.insertChunk(merge.merged);
    }
    return runsOf(chunks, from, to).map(toRawProbeRow);
  }

  private readFlowRawSync(sids: number[], from: number, to: number): RawFlowRow[] {
    const rows = this.stmt(
      `SELECT ${FLOW_COLUMNS} FROM flow_raw WHERE sid = ? AND time >= ? AND time < ? ORDER BY time`,
    )
      .raw()
      .all(sids[0], from, to) as FlowRawRow[];
    return rows.map(toFlowRow);
  }

  private readScheduleRawSync(sids: number[], from: number, to: number): RawFlowRow[] {
    const rows = this.stmt(
      `SELECT ${SCHEDULE_COLUMNS} FROM schedule_raw WHERE sid = ? AND time >= ? AND time < ? ORDER BY time`,
    )
      .raw()
      .all(sids[0], from, to) as number[][];
    return rows.map(toScheduleRow);
  }

  async insertAlertEvents(events: readonly AlertEventRecord[]): Promise<void> {
    const ins = this.stmt(
      'INSERT INTO alert_events (rule, from_state, to_state, at, value) VALUES (?, ?, ?, ?, ?)',
    );
    this.db.transaction(() => {
      for (const e of events) ins.run(e.rule, e.from, e.to, e.at, e.value);
    })();
  }

  async readAlertEvents(perRule: number): Promise<AlertEventRecord[]> {
    // Per rule, so each read walks the (rule, at) index (whose rowid suffix breaks ties) backwards.
    const rules = this.stmt('SELECT DISTINCT rule FROM alert_events');
    const newest = this.stmt(
      `SELECT id, rule, from_state, to_state, at, value FROM alert_events
       WHERE rule = ? ORDER BY at DESC, id DESC LIMIT ?`,
    );
    const rows = this.db.transaction(() =>
      (rules.all() as { rule: string }[]).flatMap((r) => newest.all(r.rule, perRule) as AlertEventRow[]),
    )();
    return rows.sort((a, b) => a.at - b.at || a.id - b.id).map(toAlertEvent);
  }

  async upsertSilence(s: SilenceRecord): Promise<void> {
    this.stmt(
      `INSERT INTO silences (id, matchers, starts_at, ends_at, comment, created_by) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET matchers = excluded.matchers, starts_at = excluded.starts_at,
         ends_at = excluded.ends_at, comment = excluded.comment, created_by = excluded.created_by`,
    ).run(s.id, JSON.stringify(s.matchers), s.startsAt, s.endsAt, s.comment, s.createdBy);
  }

  async readSilences(endedAfter: number): Promise<SilenceRecord[]> {
    const rows = this.stmt(
      `SELECT id, matchers, starts_at, ends_at, comment, created_by FROM silences
       WHERE ends_at >= ? ORDER BY starts_at DESC, id`,
    ).all(endedAfter) as SilenceRow[];
    return rows.map(toSilence);
  }

  async applyRetention(c: RetentionCutoffs): Promise<void> {
    const sids = (this.stmt('SELECT id FROM series').all() as { id: number }[]).map((r) => r.id);
    // Per series, so each delete walks the (sid, time) index.
    // A chunk goes when its last run is past the cutoff (runs of at most one hour, usually a minute).
    const delProbe = this.stmt('DELETE FROM probe_chunks WHERE sid = ? AND t0 < ? AND t1 < ?');
    const delFlow = this.stmt('DELETE FROM flow_raw WHERE sid = ? AND time < ?');
    const delSchedule = this.stmt('DELETE FROM schedule_raw WHERE sid = ? AND time < ?');
    const delBlocks = this.stmt('DELETE FROM rollup WHERE sid = ? AND tier = ? AND block < ?');
    const sweep = this.db.transaction((from: number, deadline: number) => {
      let k = from;
      // At least one series per slice; then as many as ROLLUP_SLICE_MS allows.
      do {
        const sid = sids[k++]!;
        delProbe.run(sid, c.raw, c.raw);
        delFlow.run(sid, c.raw);
        delSchedule.run(sid, c.raw);
        // A block goes when its whole span is older than the cutoff.
        delBlocks.run(sid, 1, c.m1 - HOUR);
        delBlocks.run(sid, 2, c.h1 - DAY);
      } while (k < sids.length && performance.now() < deadline);
      return k;
    });
    // In slices, one transaction each, letting the event loop go between them: on the agent's thread,
    // 10,000 series in one go blocked it for seconds.
    for (let k = 0; k < sids.length;) {
      k = sweep.immediate(k, performance.now() + ROLLUP_SLICE_MS);
      if (k < sids.length) await setImmediatePromise();
    }
    const rules = (this.stmt('SELECT DISTINCT rule FROM alert_events').all() as { rule: string }[]).map(
      (r) => r.rule,
    );
    // Per rule too: at alone has no index, (rule, at) has.
    const delEvents = this.stmt('DELETE FROM alert_events WHERE rule = ? AND at < ?');
    for (const rule of rules) delEvents.run(rule, c.alerts);
    this.stmt('DELETE FROM silences WHERE ends_at < ?').run(c.silences);
  }

  async getMeta(key: string): Promise<number | undefined> {
    const row = this.stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: number } | undefined;
    return row?.value;
  }

  async setMeta(key: string, value: number): Promise<void> {
    this.stmt(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ).run(key, value);
  }

  async integrityCheck(): Promise<string> {
    const rows = this.db.pragma('integrity_check') as { integrity_check: string }[];
    return rows.map((r) => r.integrity_check).join('\n');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      this.shm.check();
    } catch (err) {
      // Restored: safe to close. Not restored: closing checkpoints through the map, which would fault.
      if (!(err instanceof ShmTruncatedError)) return;
    }
    this.conn.close();
  }
}

const FLOW_COLUMNS =
  'time, received, lost, duplicated, reordered, late, send_failed, in_flight, dropped_locally, latency';
type FlowRawRow = [number, number, number, number, number, number, number, number, number, Buffer];
const toFlowRow = (r: FlowRawRow): RawFlowRow => ({
  time: r[0],
  counts: r.slice(1, 9) as number[],
  hist: decodeHistogram(r[9]),
});

const SCHEDULE_COLUMNS = 'time, due, attempted, behind, behind_ms';
const toScheduleRow = (r: number[]): RawFlowRow => ({
  time: r[0]!,
  counts: r.slice(1, 5),
  hist: new LatencyHistogram(),
});
