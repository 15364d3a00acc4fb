import type pg from 'pg';
import type { ProbeChunkRow } from '../backend.js';

/** Raw probe chunks in one statement (column arrays through unnest). */
export async function insertProbeChunks(c: pg.ClientBase, chunks: readonly ProbeChunkRow[]): Promise<void> {
  if (chunks.length === 0) return;
  await c.query(
    `INSERT INTO probe_chunks (sid, t0, t1, n, data)
     SELECT * FROM unnest($1::int[], $2::int8[], $3::int8[], $4::int[], $5::bytea[])`,
    [
      chunks.map((x) => x.sid),
      chunks.map((x) => x.t0),
      chunks.map((x) => x.t1),
      chunks.map((x) => x.n),
      chunks.map((x) => x.data),
    ],
  );
}
