import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { HOUR, MINUTE } from '../../src/store/aggregate.js';
import { postgresMigrations } from '../../src/store/postgres/migrations.js';
import { migratePostgres } from '../../src/store/postgres/postgres-store.js';
import { sqliteMigrations } from '../../src/store/sqlite/migrations.js';
import { migrateSqlite } from '../../src/store/sqlite/sqlite-store.js';
import type { ProbeRecord, ResultStore } from '../../src/store/types.js';
import { countRows, engines, rng, type EngineFixture } from './store-support.js';

// A fixed clock: raw rows of the last hours answer series, and rollup(nowMs) takes it explicitly.
const NOW = Date.UTC(2025, 5, 1, 12);
const FROM = NOW - 3 * HOUR - 17 * MINUTE;

/**
 * Runs as agents wrote them: two series under one name (two targets), every 500 ms for 3 h 17 min
 * (more than one conversion page of 20,000 rows), some in the same ms, failures with messages, values,
 * runs with no phases and with a phase of a kind's own.
 */
function runs(): ProbeRecord[] {
  const r = rng(5);
  const out: ProbeRecord[] = [];
  for (let t = FROM; t < NOW; t += 500) {
    const d = Math.round(0.002 * Math.exp(r() * 4) * 1e9) / 1e9;
    const ok = r() > 0.05;
    const rec: ProbeRecord = {
      time: t,
      name: 'mig',
      kind: 'http',
      target: t % 1500 === 0 ? 'https://b.example/' : 'https://a.example/',
      ok,
      durationSeconds: d,
      phases: t % 7000 === 0 ? {} : { resolve: d * 0.1, connect: d * 0.2, processing: d * 0.7 },
    };
    if (t % 11_000 === 0) rec.phases = { 'my-phase': d };
    if (!ok) {
      rec.errorCode = r() > 0.5 ? 'timeout' : 'refused';
      rec.errorMessage = `no answer, "quoted", with, commas\nand ${Math.floor(r() * 3)}`;
    }
    if (t % 3000 === 0) rec.values = { status: 200, ratio: r() };
    out.push(rec);
    if (t % 60_000 === 0) out.push({ ...rec, ok: true, durationSeconds: 0.5 });
  }
  return out;
}

/** A probe_raw row as schema version 4 wrote it: ns, JSON of ns phases, JSON values. */
function legacyRow(r: ProbeRecord, sid: number): unknown[] {
  const phases = Object.entries(r.phases).map(([k, v]) => [k, Math.max(0, Math.round(v * 1e9))]);
  return [
    sid,
    r.time,
    r.ok,
    Math.round(r.durationSeconds * 1e9),
    phases.length > 0 ? JSON.stringify(Object.fromEntries(phases)) : null,
    r.errorCode ?? null,
    r.errorMessage ?? null,
    r.values ? JSON.stringify(r.values) : null,
  ];
}

/** A store as schema version 4 left it, with `records` in its probe_raw (one row each). */
async function createAtVersion4(fx: EngineFixture, spec: string, records: ProbeRecord[]): Promise<void> {
  const targets = [...new Set(records.map((r) => r.target))];
  const sidOf = (r: ProbeRecord) => targets.indexOf(r.target) + 1;
  const series = targets.map((t, k) => `(${k + 1}, 'p', 'mig', 'http', '${t}')`).join(', ');
  const seriesSql = `INSERT INTO series (id, type, key, kind, target) VALUES ${series}`;
  const cols = 'sid, time, ok, dur, phases, err_code, err_msg, vals';
  // The dirty marks its writes left for the next rollup, as that release made them.
  const marks = new Map<string, [number, number, number, number]>();
  for (const r of records) {
    const block = Math.floor(r.time / HOUR) * HOUR;
    const m = marks.get(`${sidOf(r)}:${block}`);
    if (!m) marks.set(`${sidOf(r)}:${block}`, [sidOf(r), block, r.time, r.time]);
    else [m[2], m[3]] = [Math.min(m[2], r.time), Math.max(m[3], r.time)];
  }
  const marksSql = `INSERT INTO rollup_dirty (sid, tier, block, type, lo, hi) VALUES ${[...marks.values()]
    .map(([sid, block, lo, hi]) => `(${sid}, 1, ${block}, 'p', ${lo}, ${hi})`)
    .join(', ')}`;
  if (fx.engine === 'sqlite') {
    const db = new Database(spec.slice('sqlite:'.length));
    try {
      expect(migrateSqlite(db, sqliteMigrations.slice(0, 4))).toEqual([1, 2, 3, 4]);
      db.exec(seriesSql);
      db.exec(marksSql);
      const ins = db.prepare(`INSERT INTO probe_raw (${cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
      db.transaction(() => {
        for (const r of records) {
          const row = legacyRow(r, sidOf(r));
          row[2] = row[2] ? 1 : 0;
          ins.run(...row);
        }
      })();
    } finally {
      db.close();
    }
    return;
  }
  const url = new URL(spec);
  const schema = url.searchParams.get('schema')!;
  url.searchParams.delete('schema');
  const pool = new pg.Pool({ connectionString: url.toString(), max: 1, options: `-c search_path=${schema}` });
  try {
    expect(await migratePostgres(pool, schema, postgresMigrations.slice(0, 4))).toEqual([1, 2, 3, 4]);
    await pool.query(seriesSql);
    await pool.query(marksSql);
    const rows = records.map((r) => legacyRow(r, sidOf(r)));
    await pool.query(
      `INSERT INTO probe_raw (${cols}) SELECT * FROM unnest($1::int[], $2::int8[], $3::bool[], $4::int8[],
         $5::text[], $6::text[], $7::text[], $8::text[])`,
      [0, 1, 2, 3, 4, 5, 6, 7].map((k) => rows.map((row) => row[k])),
    );
  } finally {
    await pool.end();
  }
}

/** Everything a user reads from raw rows: the export, raw series and windows; then the rolled-up series. */
async function reads(store: ResultStore) {
  const exported: ProbeRecord[] = [];
  for await (const r of store.exportProbes('mig', FROM - HOUR, NOW + HOUR)) exported.push(r);
  const raw = await store.probeSeries('mig', NOW - 3 * HOUR, NOW, 10 * MINUTE);
  const fine = await store.probeSeries('mig', NOW - 20 * MINUTE, NOW, 30_000);
  const window = await store.probeWindow('mig', FROM, NOW);
  await store.rollup(NOW);
  const minutes = await store.probeSeries('mig', NOW - 12 * HOUR, NOW, 30 * MINUTE);
  return { exported, raw, fine, window, minutes };
}

for (const fx of engines()) {
  describe.skipIf(!fx.available)(`migration 5 (probe runs in chunks) on ${fx.engine}`, () => {
    afterAll(() => fx.cleanup());

    it('converts every raw row of a version-4 store: reads are those of the same runs written now', async () => {
      const records = runs();
      const spec = fx.freshSpec();
      await createAtVersion4(fx, spec, records);
      const migrated = await fx.open(spec, { nowMs: () => NOW });
      expect(await countRows(spec, 'SELECT sum(n) AS n FROM probe_chunks')).toBe(records.length);
      const tables = fx.engine === 'sqlite' ? 'sqlite_master' : 'information_schema.tables';
      const nameCol = fx.engine === 'sqlite' ? 'name' : 'table_name';
      expect(
        await countRows(spec, `SELECT count(*) AS n FROM ${tables} WHERE ${nameCol} = 'probe_raw'`),
      ).toBe(0);

      const fresh = await fx.open(undefined, { nowMs: () => NOW });
      await fresh.writeProbes(records.slice(0, 9000));
      await fresh.writeProbes(records.slice(9000));
      const [got, want] = [await reads(migrated), await reads(fresh)];
      expect(got.raw.resolution).toBe('raw');
      expect(got.minutes.resolution).toBe('1m');
      for (const k of ['raw', 'fine', 'window', 'minutes'] as const)
        expect([k, got[k]]).toEqual([k, want[k]]);
      for (const [i, e] of got.exported.entries()) expect([i, e]).toEqual([i, want.exported[i]]);

      // The export is the records themselves, in time order (two runs of one ms keep theirs).
      const byTime = records.map((r, k) => ({ r, k })).sort((a, b) => a.r.time - b.r.time || a.k - b.k);
      expect(got.exported).toHaveLength(records.length);
      for (const [k, { r }] of byTime.entries()) {
        const e = got.exported[k]!;
        expect(e.time).toBe(r.time);
        expect(e.target).toBe(r.target);
        expect(e.ok).toBe(r.ok);
        // Stored as whole ns, as before.
        expect(Math.round(e.durationSeconds * 1e9)).toBe(Math.round(r.durationSeconds * 1e9));
        expect(Object.keys(e.phases).sort()).toEqual(Object.keys(r.phases).sort());
        for (const [p, v] of Object.entries(r.phases))
          expect(Math.round(e.phases[p]! * 1e9)).toBe(Math.round(v * 1e9));
        expect(e.errorCode).toBe(r.errorCode);
        expect(e.errorMessage).toBe(r.errorMessage);
        expect(e.values).toEqual(r.values);
      }
      expect(await migrated.integrityCheck()).toBe('ok');
    });
  });
}
