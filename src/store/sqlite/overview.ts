import type Database from 'better-sqlite3';
import { HOUR } from '../aggregate.js';
import type { KeyedFlowRow } from '../flow-overview.js';
import type { KeyedBlock } from '../overview.js';

const PROBE_BLOCKS = `SELECT s.key AS key, r.sid AS sid, r.block AS block, r.data AS data
  FROM series s JOIN rollup r ON r.sid = s.id AND r.tier = 1 AND r.block >= ? AND r.block < ?
  WHERE s.type = 'p'`;

const statements = new WeakMap<Database.Database, Database.Statement<[number, number]>>();

/**
 * The tier-1 (1-minute) rollup blocks of every probe series with fromBlock <= block < toBlock, in one
 * statement: the series table, then each series' blocks by the rollup's (sid, tier, block) key.
 */
export function readProbeBlocks(db: Database.Database, fromBlock: number, toBlock: number): KeyedBlock[] {
  let stmt = statements.get(db);
  if (!stmt) statements.set(db, (stmt = db.prepare<[number, number]>(PROBE_BLOCKS)));
  return stmt.all(fromBlock, toBlock) as KeyedBlock[];
}

const FLOW_ROWS = `SELECT s.key AS key, f.time AS time, f.received AS received, f.lost AS lost, f.latency AS latency
  FROM series s JOIN flow_raw f ON f.sid = s.id AND f.time >= ? AND f.time < ?
  WHERE s.type = 'f'`;

const flowStatements = new WeakMap<Database.Database, Database.Statement<[number, number]>>();

/**
 * The raw intervals of every flow series with from <= time < to, in one statement (each series' rows by
 * the flow_raw (sid, time) index), in no set order: sorting every row (a temp b-tree of 360,000 rows with
 * their latencies at 1,000 flows) cost more than the overview; flowOverviewOf orders each flow's.
 */
export function readFlowRows(db: Database.Database, from: number, to: number): KeyedFlowRow[] {
  let stmt = flowStatements.get(db);
  if (!stmt) flowStatements.set(db, (stmt = db.prepare<[number, number]>(FLOW_ROWS)));
  return stmt.all(from, to) as KeyedFlowRow[];
}

/**
 * The latest run time of the probe runs written but not yet rolled up (tier-1 dirty marks), or undefined:
 * with the last rollup's time, a bound on what the store held before a new writer's first write.
 */
export function probeDirtyUntil(db: Database.Database): number | undefined {
  const row = db
    .prepare(
      `SELECT max(COALESCE(hi, block + ${HOUR - 1})) AS t FROM rollup_dirty WHERE tier = 1 AND type = 'p'`,
    )
    .get() as { t: number | null };
  return row.t ?? undefined;
}
