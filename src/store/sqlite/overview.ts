import type Database from 'better-sqlite3';
import { decodeHistogram } from '../codec.js';
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

const FLOW_ROWS = `SELECT s.key, f.time, f.received, f.lost, f.duplicated, f.reordered, f.late, f.send_failed,
    f.in_flight, f.dropped_locally, f.latency
  FROM series s JOIN flow_raw f ON f.sid = s.id AND f.time >= ? AND f.time < ?
  WHERE s.type = 'f' ORDER BY f.time, f.id`;

type FlowRow = [string, number, number, number, number, number, number, number, number, number, Buffer];

const flowStatements = new WeakMap<Database.Database, Database.Statement<[number, number]>>();

/**
 * The raw intervals of every flow series with from <= time < to, in time order, in one statement (each
 * series' rows by the flow_raw (sid, time) index).
 */
export function readFlowRows(db: Database.Database, from: number, to: number): KeyedFlowRow[] {
  let stmt = flowStatements.get(db);
  if (!stmt) flowStatements.set(db, (stmt = db.prepare<[number, number]>(FLOW_ROWS).raw()));
  return (stmt.all(from, to) as FlowRow[]).map((r) => ({
    key: r[0],
    time: r[1],
    counts: r.slice(2, 10) as number[],
    hist: decodeHistogram(r[10]),
  }));
}
