import type pg from 'pg';
import { decodeHistogram } from '../codec.js';
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

/** The raw intervals of every flow series with from <= time < to, in time order, in one statement. */
export async function readFlowRows(pool: pg.Pool, from: number, to: number): Promise<KeyedFlowRow[]> {
  const r = await pool.query<{ key: string; time: number; c: number[]; latency: Buffer }>(
    `SELECT s.key AS key, f.time AS time,
            ARRAY[f.received, f.lost, f.duplicated, f.reordered, f.late, f.send_failed, f.in_flight,
                  f.dropped_locally]::float8[] AS c,
            f.latency AS latency
     FROM series s JOIN flow_raw f ON f.sid = s.id AND f.time >= $1 AND f.time < $2
     WHERE s.type = 'f' ORDER BY f.time, f.id`,
    [from, to],
  );
  return r.rows.map((x) => ({ key: x.key, time: x.time, counts: x.c, hist: decodeHistogram(x.latency) }));
}
