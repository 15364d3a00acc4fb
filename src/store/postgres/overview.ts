import type pg from 'pg';
import { HOUR } from '../aggregate.js';
import type { KeyedFlowRow } from '../flow-overview.js';
import type { KeyedBlock } from '../overview.js';

/**
 * The tier-1 (1-minute) rollup blocks of every probe series with fromBlock <= block < toBlock, in one
 * statement (the rollup's primary key leads with sid, so each series' blocks are one index range).
 */
export async function readProbeBlocks(
  pool: pg.Pool,
  fromBlock: number,
  toBlock: number,
): Promise<KeyedBlock[]> {
  const r = await pool.query<KeyedBlock>(
    `SELECT s.key AS key, r.sid AS sid, r.block AS block, r.data AS data
     FROM series s JOIN rollup r ON r.sid = s.id AND r.tier = 1 AND r.block >= $1 AND r.block < $2
     WHERE s.type = 'p'`,
    [fromBlock, toBlock],
  );
  return r.rows;
}

/**
 * The raw intervals of every flow series with from <= time < to, in one statement, in no set order (a
 * sort of every row would cost more than the overview; flowOverviewOf orders each flow's).
 */
export async function readFlowRows(pool: pg.Pool, from: number, to: number): Promise<KeyedFlowRow[]> {
  const r = await pool.query<KeyedFlowRow>(
    `SELECT s.key AS key, f.time AS time, f.received AS received, f.lost AS lost, f.latency AS latency
     FROM series s JOIN flow_raw f ON f.sid = s.id AND f.time >= $1 AND f.time < $2
     WHERE s.type = 'f'`,
    [from, to],
  );
  return r.rows;
}

/**
 * The latest run time of the probe runs written but not yet rolled up (tier-1 dirty marks), or undefined:
 * with the last rollup's time, a bound on what the store held before a new writer's first write.
 */
export async function probeDirtyUntil(pool: pg.Pool): Promise<number | undefined> {
  const r = await pool.query<{ t: number | null }>(
    `SELECT max(COALESCE(hi, block + ${HOUR - 1}))::int8 AS t FROM rollup_dirty WHERE tier = 1 AND type = 'p'`,
  );
  return r.rows[0]?.t ?? undefined;
}
