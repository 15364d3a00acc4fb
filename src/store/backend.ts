import { HOUR, type RawFlowRow, type RawProbeRow, type SeriesCode } from './aggregate.js';
import { decodeProbeChunk, encodeProbeChunk, type StoredProbeRun } from './codec.js';
import type { KeyedFlowRow } from './flow-overview.js';
import type { KeyedBlock } from './overview.js';
import type {
  AlertEventRecord,
  FlowRecord,
  ProbeRecord,
  ScheduleRecord,
  SilenceRecord,
  StoreEngine,
} from './types.js';

/**
 * What an engine provides: storage primitives in its own SQL. Everything that is not SQL (series,
 * windows, rollup contents, retention policy) lives in store.ts once for both engines.
 */
export interface Backend {
  readonly engine: StoreEngine;
  /** Ids of the series of a probe name ('p') or a flow key ('f' and 'c', see flowKey). */
  seriesIds(type: SeriesCode, key: string): Promise<number[]>;
  /** One transaction; marks the touched hour blocks dirty for the next rollup. */
  insertProbes(records: readonly ProbeRecord[]): Promise<void>;
  insertFlows(records: readonly FlowRecord[]): Promise<void>;
  insertSchedules(records: readonly ScheduleRecord[]): Promise<void>;
  /**
   * The raw probe chunks of the series that hold runs with from <= time < to, in (t0, id) order: write
   * order, which breaks ties on time. A chunk holds runs of one series within one hour.
   */
  readProbeChunks(sids: readonly number[], from: number, to: number): Promise<StoredChunk[]>;
  /** The earliest t0 of a probe chunk of the series with from <= t0 < to, or null. */
  firstProbeChunk(sids: readonly number[], from: number, to: number): Promise<number | null>;
  /** Probe name (key), kind and target of each series. */
  seriesLabels(sids: readonly number[]): Promise<Map<number, SeriesLabels>>;
  readFlowRaw(sids: readonly number[], from: number, to: number): Promise<RawFlowRow[]>;
  /** Raw schedule rows, counts as SCHEDULE (behind in ms), with empty histograms. */
  readScheduleRaw(sids: readonly number[], from: number, to: number): Promise<RawFlowRow[]>;
  /** Rollup blocks of a tier with fromBlock <= block < toBlock. */
  readBlocks(
    sids: readonly number[],
    tier: number,
    fromBlock: number,
    toBlock: number,
  ): Promise<StoredBlock[]>;
  /** Tier-1 blocks of every probe series with fromBlock <= block < toBlock, in one query (the overview). */
  readProbeBlocks(fromBlock: number, toBlock: number): Promise<KeyedBlock[]>;
  /** The latest time of the probe runs not yet rolled up (from the tier-1 dirty marks), or undefined. */
  probeDirtyUntil(): Promise<number | undefined>;
  /** Raw intervals of every flow series with from <= time < to, in any order, in one query (the overview). */
  readFlowOverviewRows(from: number, to: number): Promise<KeyedFlowRow[]>;
  /**
   * Rebuilds every dirty block of a tier (tier 1: from raw rows, tier 2: from tier-1 blocks of the day)
   * and marks the parent day dirty; entries older than minBlock are dropped unbuilt (their source is gone).
   */
  processDirty(tier: 1 | 2, minBlock: number, build: BlockBuilders, stop?: () => boolean): Promise<number>;
  /** One transaction; ids follow the array, so events of a rule with the same `at` keep their order. */
  insertAlertEvents(events: readonly AlertEventRecord[]): Promise<void>;
  /** The newest `perRule` (>= 1) events of each rule by (at, insertion), all in (at, insertion) order. */
  readAlertEvents(perRule: number): Promise<AlertEventRecord[]>;
  /** Inserts the silence, or replaces every field of the one with its id. */
  upsertSilence(s: SilenceRecord): Promise<void>;
  /** Silences with endsAt >= endedAfter, by startsAt descending, then id. */
  readSilences(endedAfter: number): Promise<SilenceRecord[]>;
  /**
   * Deletes raw rows older than raw, tier-1 blocks ending before m1, tier-2 blocks ending before h1,
   * alert events with at < alerts and silences with endsAt < silences.
   */
  applyRetention(cutoffs: RetentionCutoffs): Promise<void>;
  getMeta(key: string): Promise<number | undefined>;
  setMeta(key: string, value: number): Promise<void>;
  integrityCheck(): Promise<string>;
  close(): Promise<void>;
}

/** Unix ms before which each kind of row goes. */
export interface RetentionCutoffs {
  raw: number;
  m1: number;
  h1: number;
  alerts: number;
  silences: number;
}

export interface StoredBlock {
  block: number;
  data: Uint8Array;
}

export interface SeriesLabels {
  key: string;
  kind: string;
  target: string;
}

/** A raw probe chunk as read: its id (write order), first run's time and codec.ts data. */
export interface StoredChunk {
  sid: number;
  id: number;
  t0: number;
  /** Runs in it. */
  n: number;
  data: Uint8Array;
}

/** A raw probe chunk to write: runs of one series within one hour, t0 and t1 its first and last time. */
export interface ProbeChunkRow {
  sid: number;
  t0: number;
  t1: number;
  n: number;
  data: Buffer;
}

/**
 * The part of an existing block a rollup rebuilds: its buckets in [from, to) are replaced by the ones
 * built from the given rows (or hours), the others are kept as they are. Without a base, the rows are
 * the block's whole source.
 */
export interface BlockBase {
  data: Uint8Array;
  from: number;
  to: number;
}

/** Pure functions from a block's source to its encoded form (null: nothing there, delete the block). */
export interface BlockBuilders {
  probeHour(block: number, rows: readonly RawProbeRow[], base?: BlockBase): Uint8Array | null;
  flowHour(block: number, rows: readonly RawFlowRow[], base?: BlockBase): Uint8Array | null;
  scheduleHour(block: number, rows: readonly RawFlowRow[], base?: BlockBase): Uint8Array | null;
  day(type: SeriesCode, block: number, hours: readonly StoredBlock[], base?: BlockBase): Uint8Array | null;
}

/**
 * The blocks a write touched, by series id, then block start: the earliest and latest time written
 * into each (`rollup_dirty.lo` and `hi`), so the rollup rebuilds only the buckets between them.
 */
export type DirtyBlocks = Map<number, Map<number, { lo: number; hi: number }>>;

/** Notes that `time` (Unix ms) was written into the block of `blockMs` that holds it. */
export function addDirty(dirty: DirtyBlocks, sid: number, time: number, blockMs: number): void {
  let blocks = dirty.get(sid);
  if (!blocks) dirty.set(sid, (blocks = new Map()));
  const block = Math.floor(time / blockMs) * blockMs;
  const range = blocks.get(block);
  if (!range) blocks.set(block, { lo: time, hi: time });
  else {
    if (time < range.lo) range.lo = time;
    if (time > range.hi) range.hi = time;
  }
}

/**
 * What of a dirty block to rebuild: [from, to) covering its dirty buckets, or undefined for the whole
 * block (a mark from before lo and hi were kept has them null).
 */
export function dirtyRange(
  block: number,
  blockMs: number,
  bucketMs: number,
  lo: number | null,
  hi: number | null,
): { from: number; to: number } | undefined {
  if (lo === null || hi === null) return undefined;
  const from = Math.max(block, Math.floor(lo / bucketMs) * bucketMs);
  const to = Math.min(block + blockMs, Math.floor(hi / bucketMs) * bucketMs + bucketMs);
  return from < to ? { from, to } : undefined;
}

/** An alert_events row as both engines read it (times as JS numbers). */
export interface AlertEventRow {
  id: number;
  rule: string;
  from_state: string;
  to_state: string;
  at: number;
  value: number | null;
}

export const toAlertEvent = (r: AlertEventRow): AlertEventRecord => ({
  rule: r.rule,
  from: r.from_state,
  to: r.to_state,
  at: r.at,
  value: r.value,
});

/** A silences row as both engines read it; matchers are JSON text. */
export interface SilenceRow {
  id: string;
  matchers: string;
  starts_at: number;
  ends_at: number;
  comment: string;
  created_by: string;
}

export const toSilence = (r: SilenceRow): SilenceRecord => ({
  id: r.id,
  matchers: JSON.parse(r.matchers) as Record<string, string>,
  startsAt: r.starts_at,
  endsAt: r.ends_at,
  comment: r.comment,
  createdBy: r.created_by,
});

/** The series key of a flow: canary and coalminer, joined by a unit separator. */
export const flowKey = (canary: string, coalminer: string): string => `${canary}\u001f${coalminer}`;

/** Phases (seconds) as stored: integer nanoseconds, or null when there are none. */
export function phasesToNs(phases: Record<string, number> | undefined): Record<string, number> | null {
  if (!phases) return null;
  let out: Record<string, number> | undefined;
  for (const [k, v] of Object.entries(phases)) {
    if (!Number.isFinite(v)) continue;
    (out ??= {})[k] = Math.max(0, Math.round(v * 1e9));
  }
  return out ?? null;
}

/** A probe record as a raw chunk stores it. */
export function toStoredRun(r: ProbeRecord): StoredProbeRun {
  return {
    time: Math.round(r.time),
    ok: r.ok,
    durationNs: durationNs(r.durationSeconds),
    phases: phasesToNs(r.phases),
    errorCode: r.errorCode ?? null,
    errorMessage: r.errorMessage ?? null,
    values: r.values && Object.keys(r.values).length > 0 ? { ...r.values } : null,
  };
}

/**
 * Runs as chunks to write: one per series and hour, its runs in time order (a stable sort: runs of
 * the same ms keep the order they came in).
 */
export function toProbeChunks(runs: readonly { sid: number; run: StoredProbeRun }[]): ProbeChunkRow[] {
  const groups = new Map<string, { sid: number; runs: StoredProbeRun[] }>();
  for (const { sid, run } of runs) {
    const k = `${sid}:${Math.floor(run.time / HOUR)}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { sid, runs: [] }));
    g.runs.push(run);
  }
  return [...groups.values()].map(({ sid, runs: rs }) => chunkRow(sid, rs));
}

function chunkRow(sid: number, runs: StoredProbeRun[]): ProbeChunkRow {
  runs.sort((a, b) => a.time - b.time);
  return { sid, t0: runs[0]!.time, t1: runs.at(-1)!.time, n: runs.length, data: encodeProbeChunk(runs) };
}

/** The runs of chunks (in their read order) with from <= time < to, by time, then chunk order. */
export function runsOf(
  chunks: readonly StoredChunk[],
  from = -Infinity,
  to = Infinity,
): (StoredProbeRun & { sid: number })[] {
  const out: (StoredProbeRun & { sid: number })[] = [];
  for (const c of chunks)
    for (const r of decodeProbeChunk(c.data))
      if (r.time >= from && r.time < to) out.push({ ...r, sid: c.sid });
  return out.sort((a, b) => a.time - b.time);
}

export const toRawProbeRow = (r: StoredProbeRun): RawProbeRow => ({
  time: r.time,
  ok: r.ok,
  durationNs: r.durationNs,
  phases: r.phases,
});

/** A chunk with fewer runs than this grows: the rollup merges the next minutes' runs into it. */
export const CHUNK_RUNS = 60;

/**
 * What the rollup merges, or undefined when there is nothing to merge: the chunks of the minutes it
 * rolls up (the writer wrote one per batch: at 1 s, one a second), together with `prev`, the series'
 * latest chunk of the hour before them, while that one holds fewer than CHUNK_RUNS runs. So a target
 * probed every second gets a chunk a minute, one probed every 15 s a chunk every 15 minutes.
 */
/**
 * Whether the rollup should look up the series' latest earlier chunk to grow: only when the minutes it
 * rolls up hold fewer than CHUNK_RUNS runs (at 1 s they fill a chunk of their own, and the lookup is saved).
 */
export const growsPrevious = (chunks: readonly StoredChunk[]): boolean =>
  chunks.reduce((a, c) => a + c.n, 0) < CHUNK_RUNS;

export function mergeChunks(
  sid: number,
  chunks: readonly StoredChunk[],
  prev?: StoredChunk,
): { merged: ProbeChunkRow; replaced: StoredChunk[] } | undefined {
  const replaced = prev && prev.n < CHUNK_RUNS ? [prev, ...chunks] : [...chunks];
  if (replaced.length < 2) return undefined;
  const merged = chunkRow(
    sid,
    runsOf(replaced).map(({ sid: _, ...r }) => r),
  );
  return { merged, replaced };
}

export function toProbeRecord(r: StoredProbeRun, labels: SeriesLabels): ProbeRecord {
  const phases: Record<string, number> = {};
  if (r.phases) for (const [k, v] of Object.entries(r.phases)) phases[k] = v / 1e9;
  const rec: ProbeRecord = {
    time: r.time,
    name: labels.key,
    kind: labels.kind,
    target: labels.target,
    ok: r.ok,
    durationSeconds: r.durationNs / 1e9,
    phases,
  };
  if (r.errorCode !== null) rec.errorCode = r.errorCode;
  if (r.errorMessage !== null) rec.errorMessage = r.errorMessage;
  if (r.values !== null) rec.values = r.values;
  return rec;
}

/**
 * A probe_raw row of schema version 4 and before as a stored run (migration 5 converts them): phases
 * JSON of ns, vals JSON.
 */
export function legacyProbeRun(row: {
  time: number;
  ok: boolean | number;
  dur: number;
  phases: string | null;
  err_code: string | null;
  err_msg: string | null;
  vals: string | null;
}): StoredProbeRun {
  const phases = row.phases ? (JSON.parse(row.phases) as Record<string, number>) : null;
  // JSON held a value that was not finite as null: NaN, which JSON writes as null again.
  const values = row.vals ? (JSON.parse(row.vals) as Record<string, number | null>) : null;
  if (values) for (const k of Object.keys(values)) values[k] ??= NaN;
  return {
    time: row.time,
    ok: row.ok === true || row.ok === 1,
    durationNs: row.dur,
    phases: phases && Object.keys(phases).length > 0 ? phases : null,
    errorCode: row.err_code,
    errorMessage: row.err_msg,
    values: values && Object.keys(values).length > 0 ? (values as Record<string, number>) : null,
  };
}

export function durationNs(seconds: number): number {
  return Number.isFinite(seconds) && seconds > 0 ? Math.round(seconds * 1e9) : 0;
}

/** Seconds as the whole ms a schedule row stores. */
export const secondsToMs = (s: number): number => (Number.isFinite(s) && s > 0 ? Math.round(s * 1000) : 0);

export const nonNegInt = (v: number): number => (Number.isFinite(v) && v > 0 ? Math.round(v) : 0);
