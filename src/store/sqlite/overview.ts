import type Database from 'better-sqlite3';
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
