import type { ScheduleSeries, Series } from './series.js';
import {
  Accumulator,
  alignQuery,
  bucketsFromRaw,
  chooseResolution,
  DAY,
  floorTo,
  FLOW,
  HOUR,
  MINUTE,
  percentiles,
  PROBE,
  SCHEDULE,
  SERIES_TYPES,
  Steps,
  TIERS,
  toScheduleSeries,
  toSeries,
  type Resolution,
  type SeriesType,
} from './aggregate.js';
import {
  flowKey,
  runsOf,
  toProbeRecord,
  toRawProbeRow,
  type Backend,
  type BlockBase,
  type BlockBuilders,
} from './backend.js';
import { decodeBlock, encodeBlock, type Bucket } from './codec.js';
import { DEFAULT_RETENTION, type Retention } from './config.js';
import {
  checkOverviewRange,
  FLOW_OVERVIEW_MAX_MS,
  flowOverviewOf,
  type KeyedFlowRow,
} from './flow-overview.js';
import { ProbeOverviewState } from './overview.js';
import type {
  AlertEventRecord,
  FlowOverview,
  FlowRecord,
  FlowWindow,
  ProbeRecord,
  ProbeWindow,
  ResultStore,
  ScheduleRecord,
  SilenceRecord,
  StoreEngine,
  TargetOverview,
} from './types.js';

const ROLLED_UP_TO = 'rolled_up_to';
/**
 * Raised by each rollup, by 1 and a random amount: a rollup that finds it where this store left it knows no
 * other agent rolled up meanwhile; one that does not, that the store is shared (overview.ts).
 */
const OVERVIEW_TICKET = 'overview_ticket';
/** The flow overview reads raw rows this much of the range at a time. */
const FLOW_READ_MS = 10 * MINUTE;
/** How long a silence is kept after it ended (the API lists expired ones for a day). */
export const SILENCE_RETENTION_MS = 7 * DAY;

export interface StoreOptions {
  retention?: Retention;
  /** Wall clock (ms) used to pick a tier for a query; injectable for tests. */
  nowMs?: () => number;
}

/**
 * A block's buckets after a rebuild: the fresh ones, plus, when only part of the block was rebuilt, the
 * base block's buckets outside [base.from, base.to). Merging a minute into its hour this way keeps a
 * rollup's cost to what was written since the last one, however far into the hour (or day) it is.
 */
function withBase(type: SeriesType, block: number, bucketMs: number, fresh: Bucket[], base?: BlockBase) {
  if (!base) return fresh;
  const kept = decodeBlock(base.data, block, bucketMs, type.nCounts, type.legacyCounts).filter(
    (b) => b.time < base.from || b.time >= base.to,
  );
  return [...kept, ...fresh].sort((a, b) => a.time - b.time);
}

function hourBlock(
  type: SeriesType,
  block: number,
  base: BlockBase | undefined,
  feed: (steps: Steps) => void,
): Uint8Array | null {
  const buckets = withBase(type, block, MINUTE, bucketsFromRaw(type, block, MINUTE, HOUR, feed), base);
  return buckets.length > 0 ? encodeBlock(block, MINUTE, type.nCounts, buckets) : null;
}

const builders: BlockBuilders = {
  probeHour: (block, rows, base) =>
    hourBlock(PROBE, block, base, (steps) => {
      for (const r of rows) steps.at(r.time)?.addProbe(r);
    }),
  flowHour: (block, rows, base) =>
    hourBlock(FLOW, block, base, (steps) => {
      for (const r of rows) steps.at(r.time)?.addFlow(r);
    }),
  scheduleHour: (block, rows, base) =>
    hourBlock(SCHEDULE, block, base, (steps) => {
      for (const r of rows) steps.at(r.time)?.addFlow(r);
    }),
  day(code, block, hours, base) {
    const type = SERIES_TYPES[code];
    const fresh = bucketsFromRaw(type, block, HOUR, DAY, (steps) => {
      for (const h of hours)
        for (const b of decodeBlock(h.data, h.block, MINUTE, type.nCounts, type.legacyCounts))
          steps.at(b.time)?.addBucket(b);
    });
    const buckets = withBase(type, block, HOUR, fresh, base);
    return buckets.length > 0 ? encodeBlock(block, HOUR, type.nCounts, buckets) : null;
  },
};

/** The ResultStore of either engine: series, windows, rollups and retention over a Backend's primitives. */
export class Store implements ResultStore {
  readonly engine: StoreEngine;
  private readonly retention: Retention;
  private readonly now: () => number;
  private closed = false;
  private rolling: Promise<void> | undefined;
  /** For a rollup in progress: whether close() was called, so it stops between slices. */
  private readonly stopped = (): boolean => this.closed;
  /** Decoded rollup minutes and what was written since the last rollup, for probeOverview. */
  private readonly overview = new ProbeOverviewState();
  /** Until it resolves: what the store held before this one's first write, for the overview. */
  private overviewStart: Promise<void> | undefined;
  /** The overview ticket as this store last saw or left it. */
  private ticket: number | undefined;

  constructor(
    private readonly backend: Backend,
    opts: StoreOptions = {},
  ) {
    this.engine = backend.engine;
    this.retention = opts.retention ?? DEFAULT_RETENTION;
    this.now = opts.nowMs ?? Date.now;
  }

  private check(): void {
    if (this.closed) throw new Error(`the ${this.engine} store is closed`);
  }

  /** Once, before the first probe write or overview: where this store's own runs begin. */
  private startOverview(): Promise<void> {
    this.overviewStart ??= (async () => {
      const [dirty, rolled, ticket] = await Promise.all([
        this.backend.probeDirtyUntil(),
        this.backend.getMeta(ROLLED_UP_TO),
        this.backend.getMeta(OVERVIEW_TICKET),
      ]);
      const prior = [dirty, rolled].filter((t): t is number => t !== undefined);
      this.overview.begin(prior.length > 0 ? Math.max(...prior) : undefined);
      this.ticket = ticket;
    })().catch((err: unknown) => {
      this.overviewStart = undefined; // asked again next time
      throw err;
    });
    return this.overviewStart;
  }

  async writeProbes(records: readonly ProbeRecord[]): Promise<void> {
    this.check();
    await this.startOverview();
    if (records.length > 0) await this.backend.insertProbes(records);
    this.overview.written(records, this.now());
  }

  async writeFlows(records: readonly FlowRecord[]): Promise<void> {
    this.check();
    if (records.length > 0) await this.backend.insertFlows(records);
  }

  async writeSchedules(records: readonly ScheduleRecord[]): Promise<void> {
    this.check();
    if (records.length > 0) await this.backend.insertSchedules(records);
  }

  async writeAlertEvents(events: readonly AlertEventRecord[]): Promise<void> {
    this.check();
    if (events.length > 0) await this.backend.insertAlertEvents(events.map(alertEventAsStored));
  }

  async alertEvents(perRule: number): Promise<AlertEventRecord[]> {
    this.check();
    const n = Math.min(Math.floor(perRule), Number.MAX_SAFE_INTEGER);
    return n >= 1 ? this.backend.readAlertEvents(n) : [];
  }

  async saveSilence(s: SilenceRecord): Promise<void> {
    this.check();
    await this.backend.upsertSilence({
      id: s.id,
      matchers: { ...s.matchers },
      startsAt: unixMs(s.startsAt, 'silence startsAt'),
      endsAt: unixMs(s.endsAt, 'silence endsAt'),
      comment: s.comment,
      createdBy: s.createdBy,
    });
  }

  async silences(endedAfter: number): Promise<SilenceRecord[]> {
    this.check();
    if (Number.isNaN(endedAfter)) throw new RangeError('silences(endedAfter): endedAfter is NaN');
    // Stored times are whole ms, so ends_at >= x is ends_at >= ceil(x); ±Infinity clamp to what bigint holds.
    const bound = Math.max(Number.MIN_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, Math.ceil(endedAfter)));
    return this.backend.readSilences(bound);
  }

  async probeSeries(name: string, from: number, to: number, stepMs: number): Promise<Series> {
    return this.series(PROBE, name, from, to, stepMs);
  }

  async flowSeries(
    canary: string,
    coalminer: string,
    from: number,
    to: number,
    stepMs: number,
  ): Promise<Series> {
    return this.series(FLOW, flowKey(canary, coalminer), from, to, stepMs);
  }

  async scheduleSeries(
    canary: string,
    coalminer: string,
    from: number,
    to: number,
    stepMs: number,
  ): Promise<ScheduleSeries> {
    const { steps, resolution } = await this.steps(SCHEDULE, flowKey(canary, coalminer), from, to, stepMs);
    return toScheduleSeries(steps, resolution);
  }

  private async series(
    type: SeriesType,
    key: string,
    from: number,
    to: number,
    stepMs: number,
  ): Promise<Series> {
    const { steps, resolution } = await this.steps(type, key, from, to, stepMs);
    return toSeries(type, steps, resolution);
  }

  private async steps(
    type: SeriesType,
    key: string,
    from: number,
    to: number,
    stepMs: number,
  ): Promise<{ steps: Steps; resolution: Resolution }> {
    this.check();
    const resolution = chooseResolution(from, to, stepMs, this.now(), this.retention);
    const q = alignQuery(from, to, stepMs, resolution);
    const steps = new Steps(type, q.from, q.to, q.step);
    const sids = await this.backend.seriesIds(type.code, key);
    if (sids.length > 0) await this.feed(type, sids, q.from, q.to, resolution, (t) => steps.at(t));
    return { steps, resolution };
  }

  async probeWindow(name: string, from: number, to: number): Promise<ProbeWindow> {
    const a = await this.window(PROBE, name, from, to);
    const [runs, failures] = a.counts as [number, number];
    return {
      from,
      to,
      runs,
      failures,
      successRatio: runs > 0 ? (runs - failures) / runs : null,
      ...percentiles(a.hist),
    };
  }

  overviewDropped(): number {
    return this.overview.tailDropped;
  }

  /** What the overview keeps in memory (bytes, and for how many targets). */
  overviewMemory(): { bytes: number; targets: number } {
    return this.overview.memory();
  }

  async probeOverview(names: readonly string[], from: number, to: number): Promise<TargetOverview[]> {
    this.check();
    await this.startOverview();
    return this.overview.read(names, from, to, {
      blocks: (a, b) => this.backend.readProbeBlocks(a, b),
      rolledUpTo: () => this.backend.getMeta(ROLLED_UP_TO),
    });
  }

  async flowOverview(
    flows: readonly { canary: string; coalminer: string }[],
    from: number,
    to: number,
  ): Promise<FlowOverview[]> {
    this.check();
    checkOverviewRange(from, to, FLOW_OVERVIEW_MAX_MS);
    const keys = flows.map((f) => flowKey(f.canary, f.coalminer));
    if (chooseResolution(from, to, MINUTE, this.now(), this.retention) === 'raw') {
      // Ten minutes at a time, the loop let go between reads: SQLite's reads are synchronous, and an hour
      // of 1,000 flows is 360,000 rows.
      const rows: KeyedFlowRow[] = [];
      for (let t = from; t < to; t += FLOW_READ_MS) {
        for (const r of await this.backend.readFlowOverviewRows(t, Math.min(to, t + FLOW_READ_MS)))
          rows.push(r);
        await new Promise((resolve) => setImmediate(resolve));
      }
      return flowOverviewOf(keys, from, to, rows);
    }
    // Raw rows no longer kept for all of the range: flowWindow and flowSeries read rollups for it.
    const out: FlowOverview[] = [];
    for (const f of flows) {
      const w = await this.flowWindow(f.canary, f.coalminer, from, to);
      const s = await this.flowSeries(f.canary, f.coalminer, from, to, MINUTE);
      out.push({
        window: { p50: w.p50, p95: w.p95, p99: w.p99, lossRatio: w.lossRatio, received: w.received },
        points: s.points.map((p) => ({ time: p.time, p50: p.p50, failures: p.failures })),
      });
    }
    return out;
  }

  async flowWindow(canary: string, coalminer: string, from: number, to: number): Promise<FlowWindow> {
    const a = await this.window(FLOW, flowKey(canary, coalminer), from, to);
    const [received, lost, duplicated, reordered, late, sendFailed, inFlight, droppedLocally] = a.counts as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    return {
      from,
      to,
      received,
      lost,
      duplicated,
      reordered,
      late,
      sendFailed,
      inFlight,
      droppedLocally,
      lossRatio: received + lost > 0 ? lost / (received + lost) : null,
      ...percentiles(a.hist),
    };
  }

  private async window(type: SeriesType, key: string, from: number, to: number): Promise<Accumulator> {
    this.check();
    const acc = new Accumulator(type);
    // Windows are judged by range alone: raw up to 6 h, then whole minutes, then whole hours.
    const resolution = chooseResolution(from, to, MINUTE, this.now(), this.retention);
    const q = alignQuery(from, to, Math.max(1, to - from), resolution);
    const sids = await this.backend.seriesIds(type.code, key);
    if (sids.length > 0) await this.feed(type, sids, q.from, q.to, resolution, () => acc);
    return acc;
  }

  /**
   * Feeds [from, to) into accumulators from the chosen tier. Rollups only cover what the last rollup
   * saw: blocks from the one that was still open at the last rollup come from the finer tier (or raw).
   */
  private async feed(
    type: SeriesType,
    sids: number[],
    from: number,
    to: number,
    resolution: Resolution,
    at: (t: number) => Accumulator | undefined,
  ): Promise<void> {
    const rolledUpTo = (await this.backend.getMeta(ROLLED_UP_TO)) ?? -Infinity;
    const clamp = (t: number, lo: number) => Math.min(to, Math.max(lo, t));
    let rawFrom = from;
    if (resolution !== 'raw') {
      let segFrom = from;
      if (resolution === '1h') {
        const cut = clamp(floorTo(rolledUpTo, DAY), from);
        await this.feedBlocks(type, sids, 2, segFrom, cut, at);
        segFrom = cut;
      }
      const cut = clamp(floorTo(rolledUpTo, HOUR), segFrom);
      await this.feedBlocks(type, sids, 1, segFrom, cut, at);
      rawFrom = cut;
    }
    if (rawFrom >= to) return;
    if (type.code === 'p') {
      for (const r of runsOf(await this.backend.readProbeChunks(sids, rawFrom, to), rawFrom, to))
        at(r.time)?.addProbe(toRawProbeRow(r));
    } else {
      const rows =
        type.code === 'f'
          ? await this.backend.readFlowRaw(sids, rawFrom, to)
          : await this.backend.readScheduleRaw(sids, rawFrom, to);
      for (const r of rows) at(r.time)?.addFlow(r);
    }
  }

  private async feedBlocks(
    type: SeriesType,
    sids: number[],
    tier: 1 | 2,
    from: number,
    to: number,
    at: (t: number) => Accumulator | undefined,
  ): Promise<void> {
    if (from >= to) return;
    const { bucketMs, blockMs } = tier === 1 ? TIERS['1m'] : TIERS['1h'];
    const blocks = await this.backend.readBlocks(sids, tier, floorTo(from, blockMs), to);
    for (const b of blocks)
      for (const bucket of decodeBlock(b.data, b.block, bucketMs, type.nCounts, type.legacyCounts))
        if (bucket.time >= from && bucket.time < to) at(bucket.time)?.addBucket(bucket);
  }

  async *exportProbes(name: string, from: number, to: number): AsyncIterable<ProbeRecord> {
    this.check();
    const sids = await this.backend.seriesIds('p', name);
    if (sids.length === 0) return;
    const labels = await this.backend.seriesLabels(sids);
    // A chunk holds runs of one hour: an hour's chunks at a time, in time order (ties in write order),
    // the empty hours between them skipped.
    const end = Math.min(to, Number.MAX_SAFE_INTEGER);
    let start = Math.max(from, Number.MIN_SAFE_INTEGER);
    while (start < end) {
      const first = await this.backend.firstProbeChunk(sids, floorTo(start, HOUR), end);
      if (first === null) return;
      const hourEnd = floorTo(Math.max(first, start), HOUR) + HOUR;
      const hourFrom = Math.max(start, floorTo(first, HOUR));
      const chunks = await this.backend.readProbeChunks(sids, hourFrom, Math.min(end, hourEnd));
      for (const r of runsOf(chunks, hourFrom, Math.min(end, hourEnd)))
        yield toProbeRecord(r, labels.get(r.sid)!);
      start = hourEnd;
    }
  }

  async rollup(nowMs: number): Promise<void> {
    this.check();
    // One rollup at a time; a second caller waits for the running one and then runs its own.
    while (this.rolling) await this.rolling.catch(() => undefined);
    const run = (async () => {
      const r = this.retention;
      await this.backend.processDirty(1, floorTo(nowMs - r.raw, HOUR), builders, this.stopped);
      if (!this.closed) this.overview.rolledUp(); // unless it stopped early, the blocks hold every write
      await this.checkOverviewTicket();
      await this.backend.processDirty(2, floorTo(nowMs - r['1m'], DAY), builders, this.stopped);
      await this.backend.applyRetention({
        raw: nowMs - r.raw,
        m1: nowMs - r['1m'],
        h1: nowMs - r['1h'],
        // Alert history is kept as long as the longest series it can be read against. Rows hold whole
        // ms, so rounding the cutoff up deletes the same rows and stays a valid bigint for PostgreSQL.
        alerts: Math.ceil(nowMs - r['1h']),
        silences: Math.ceil(nowMs - SILENCE_RETENTION_MS),
      });
      const prev = (await this.backend.getMeta(ROLLED_UP_TO)) ?? -Infinity;
      await this.backend.setMeta(ROLLED_UP_TO, Math.max(prev, nowMs));
    })();
    this.rolling = run;
    try {
      await run;
    } finally {
      this.rolling = undefined;
    }
  }

  /** Whether another agent rolled up since this store last did: then the store is shared. */
  private async checkOverviewTicket(): Promise<void> {
    await this.startOverview();
    const seen = await this.backend.getMeta(OVERVIEW_TICKET);
    if (seen !== this.ticket) this.overview.sharedWithOthers();
    this.ticket = (seen ?? 0) + 1 + Math.floor(Math.random() * 2 ** 20);
    await this.backend.setMeta(OVERVIEW_TICKET, this.ticket);
  }

  async integrityCheck(): Promise<string> {
    this.check();
    return this.backend.integrityCheck();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.rolling?.catch(() => undefined);
    await this.backend.close();
  }
}

/** Times as stored: whole Unix ms; a time that is not a finite number is a caller's bug, not a row. */
function unixMs(v: number, what: string): number {
  if (!Number.isFinite(v)) throw new RangeError(`${what} must be a finite Unix ms time, not ${v}`);
  return Math.round(v);
}

/** NaN (and a missing value) is stored as null: SQLite cannot hold NaN, and both engines must agree. */
function alertEventAsStored(e: AlertEventRecord): AlertEventRecord {
  const value = typeof e.value === 'number' && !Number.isNaN(e.value) ? e.value : null;
  return { rule: e.rule, from: e.from, to: e.to, at: unixMs(e.at, 'alert event at'), value };
}
