import type pg from 'pg';
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
