import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest';
import type { AlertPersistence } from '../../src/alerting/engine.js';
import { DAY, HOUR, MINUTE } from '../../src/store/aggregate.js';
import { postgresMigrations } from '../../src/store/postgres/migrations.js';
import { migratePostgres } from '../../src/store/postgres/postgres-store.js';
import { sqliteMigrations } from '../../src/store/sqlite/migrations.js';
import { migrateSqlite } from '../../src/store/sqlite/sqlite-store.js';
import type { AlertEventRecord, ProbeRecord, ResultStore, SilenceRecord } from '../../src/store/types.js';
import { countRows, engines, type EngineFixture } from './store-support.js';

// A fixed clock: every time below is relative to it, and rollup(nowMs) takes it explicitly.
const NOW = Date.UTC(2025, 5, 1, 12);

// Checked by `tsc`: the agent hands its ResultStore to the alert engine's restore() as it is.
expectTypeOf<ResultStore>().toExtend<AlertPersistence>();

const ev = (rule: string, at: number, from: string, to: string, value: number | null): AlertEventRecord => ({
  rule,
  from,
  to,
  at,
  value,
});

const silence = (id: string, startsAt: number, endsAt: number, extra: Partial<SilenceRecord> = {}) => ({
  id,
  matchers: { alertname: 'probe-latency', target: id },
  startsAt,
  endsAt,
  comment: `maintenance of ${id}`,
  createdBy: 'ops@example.com',
  ...extra,
});

/** A store left by the previous release: migration 1 only, with one probe run written in that schema. */
async function createAtVersion1(fx: EngineFixture, spec: string, run: ProbeRecord): Promise<void> {
  const seriesSql = `INSERT INTO series (id, type, key, kind, target) VALUES (1, 'p', '${run.name}', '${run.kind}', '${run.target}')`;
  const runSql = `INSERT INTO probe_raw (sid, time, ok, dur, phases) VALUES (1, ${run.time}, ${run.ok ? 'true' : 'false'}, ${Math.round(run.durationSeconds * 1e9)}, NULL)`;
  if (fx.engine === 'sqlite') {
    const db = new Database(spec.slice('sqlite:'.length));
    try {
      expect(migrateSqlite(db, sqliteMigrations.slice(0, 1))).toEqual([1]);
      db.exec(seriesSql);
      db.exec(runSql);
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
    expect(await migratePostgres(pool, schema, postgresMigrations.slice(0, 1))).toEqual([1]);
    await pool.query(seriesSql);
    await pool.query(runSql);
  } finally {
    await pool.end();
  }
}

for (const fx of engines()) {
  describe.skipIf(!fx.available)(`alert history and silences on ${fx.engine}`, () => {
    afterAll(() => fx.cleanup());

    it('keeps the newest events of each rule, returned oldest first, values and nulls as written', async () => {
      const store = await fx.open();
      expect(await store.alertEvents(10)).toEqual([]);
      // Three rules interleaved in time, over two batches; `flappy` has more events than the limit.
      const flappy = Array.from({ length: 8 }, (_, k) =>
        ev('flappy', NOW + k * MINUTE, k % 2 ? 'firing' : 'ok', k % 2 ? 'ok' : 'firing', k * 0.25),
      );
      const slow = [
        ev('slow', NOW + 30_000, 'ok', 'pending', 1.5),
        ev('slow', NOW + 90_000, 'pending', 'firing', 2.75),
      ];
      const silent = [ev('silent', NOW + 3 * MINUTE + 1, 'ok', 'nodata', null)];
      await store.writeAlertEvents([...flappy.slice(0, 5), slow[0]!]);
      await store.writeAlertEvents([...flappy.slice(5), slow[1]!, ...silent]);
      await store.writeAlertEvents([]);

      const got = await store.alertEvents(3);
      const want = [...flappy.slice(-3), ...slow, ...silent].sort((a, b) => a.at - b.at);
      expect(got).toEqual(want);
      expect(got.find((e) => e.rule === 'silent')!.value).toBeNull();

      // A limit above what is stored returns everything; 0 or less returns nothing.
      expect(await store.alertEvents(1000)).toEqual(
        [...flappy, ...slow, ...silent].sort((a, b) => a.at - b.at),
      );
      expect(await store.alertEvents(1)).toEqual(
        [flappy.at(-1)!, slow[1]!, silent[0]!].sort((a, b) => a.at - b.at),
      );
      expect(await store.alertEvents(0)).toEqual([]);
      expect(await store.alertEvents(Infinity)).toHaveLength(flappy.length + slow.length + silent.length);
    });

    it('keeps the written order of a rule’s events at the same instant, and stores NaN as null', async () => {
      const store = await fx.open();
      // One evaluation can move a rule ok -> pending -> firing (a zero `for:`): same `at`, order matters.
      const at = NOW + 0.4; // not a whole ms: stored rounded
      await store.writeAlertEvents([
        ev('instant', at, 'ok', 'pending', 3),
        ev('instant', at, 'pending', 'firing', 3),
        ev('broken', NOW, 'ok', 'nodata', Number.NaN),
        ev('huge', NOW, 'ok', 'firing', Number.POSITIVE_INFINITY),
      ]);
      // Across rules, events at one instant come in the order they were written.
      expect(await store.alertEvents(1)).toEqual([
        ev('instant', NOW, 'pending', 'firing', 3),
        ev('broken', NOW, 'ok', 'nodata', null),
        ev('huge', NOW, 'ok', 'firing', Number.POSITIVE_INFINITY),
      ]);
      expect((await store.alertEvents(2)).filter((e) => e.rule === 'instant').map((e) => e.to)).toEqual([
        'pending',
        'firing',
      ]);
      await expect(store.writeAlertEvents([ev('bad', Number.NaN, 'ok', 'firing', 1)])).rejects.toBeInstanceOf(
        RangeError,
      );
    });

    it('saves silences by id: a later save (an expired copy) replaces the earlier', async () => {
      const store = await fx.open();
      const s = silence('db-1', NOW - HOUR, NOW + 2 * HOUR, {
        matchers: { alertname: 'flow-loss', canary: 'eu-canary', coalminer: 'ünïcode "miner", 1' },
      });
      await store.saveSilence(s);
      expect(await store.silences(NOW)).toEqual([s]);
      // Expiring it early, as DELETE /silences/:id does: same id, endsAt now, every field replaced.
      const expired = { ...s, endsAt: NOW - MINUTE, comment: 'expired early', createdBy: 'api' };
      await store.saveSilence(expired);
      expect(await store.silences(NOW)).toEqual([]);
      expect(await store.silences(NOW - HOUR)).toEqual([expired]);
      await expect(store.saveSilence({ ...s, endsAt: Number.POSITIVE_INFINITY })).rejects.toBeInstanceOf(
        RangeError,
      );
    });

    it('lists silences that ended at or after a time, newest start first', async () => {
      const store = await fx.open();
      const old = silence('old', NOW - 3 * DAY, NOW - 2 * DAY);
      const justEnded = silence('just-ended', NOW - 2 * HOUR, NOW - HOUR);
      const active = silence('active', NOW - HOUR, NOW + HOUR);
      const future = silence('future', NOW + DAY, NOW + 2 * DAY);
      const sameStart = silence('also-active', NOW - HOUR, NOW + 3 * HOUR);
      for (const s of [justEnded, future, old, active, sameStart]) await store.saveSilence(s);
      const ids = async (after: number) => (await store.silences(after)).map((s) => s.id);
      // Newest startsAt first; the two that start together by id.
      expect(await ids(-Infinity)).toEqual(['future', 'active', 'also-active', 'just-ended', 'old']);
      // endsAt >= endedAfter: the boundary is inclusive.
      expect(await ids(NOW - HOUR)).toEqual(['future', 'active', 'also-active', 'just-ended']);
      expect(await ids(NOW - HOUR + 0.5)).toEqual(['future', 'active', 'also-active']);
      expect(await ids(NOW + 2 * DAY)).toEqual(['future']);
      expect(await ids(Infinity)).toEqual([]);
      expect((await store.silences(NOW))[1]).toEqual(active);
    });

    it('retention drops alert events past the 1-hour tier and silences ended over 7 days ago', async () => {
      const spec = fx.freshSpec();
      const store = await fx.open(spec, { retention: { raw: HOUR, '1m': DAY, '1h': 2 * DAY } });
      const events = [
        ev('a', NOW - 3 * DAY, 'ok', 'firing', 1),
        ev('a', NOW - 2 * DAY - 1, 'firing', 'ok', 0),
        ev('a', NOW - 2 * DAY, 'ok', 'firing', 1), // exactly at the cutoff: kept
        ev('a', NOW - HOUR, 'firing', 'ok', 0),
        ev('b', NOW - 5 * DAY, 'ok', 'nodata', null),
        ev('c', NOW - MINUTE, 'ok', 'pending', 7),
      ];
      await store.writeAlertEvents(events);
      const silences = [
        silence('ended-8d', NOW - 9 * DAY, NOW - 8 * DAY),
        silence('ended-7d-1ms', NOW - 8 * DAY, NOW - 7 * DAY - 1),
        silence('ended-7d', NOW - 8 * DAY, NOW - 7 * DAY), // exactly 7 days: kept
        silence('ended-6d', NOW - 7 * DAY, NOW - 6 * DAY),
        silence('active', NOW - HOUR, NOW + HOUR),
      ];
      for (const s of silences) await store.saveSilence(s);

      await store.rollup(NOW);
      expect(await store.alertEvents(100)).toEqual([events[2], events[3], events[5]]);
      expect(await countRows(spec, 'SELECT count(*) AS n FROM alert_events')).toBe(3);
      expect((await store.silences(-Infinity)).map((s) => s.id).sort()).toEqual([
        'active',
        'ended-6d',
        'ended-7d',
      ]);
      expect(await countRows(spec, 'SELECT count(*) AS n FROM silences')).toBe(3);
      // A later pass moves the cutoffs with the clock: events before NOW - 1 d + 1, silences ended
      // before NOW - 6 d + 1.
      await store.rollup(NOW + DAY + 1);
      expect(await store.alertEvents(100)).toEqual([events[3], events[5]]);
      expect((await store.silences(-Infinity)).map((s) => s.id)).toEqual(['active']);
      expect(await store.integrityCheck()).toBe('ok');
    });

    it('keeps alert history and silences across a close and reopen', async () => {
      const spec = fx.freshSpec();
      const first = await fx.open(spec);
      const events = [ev('r', NOW, 'ok', 'firing', 0.5), ev('r', NOW + MINUTE, 'firing', 'ok', null)];
      const window = silence('maintenance', NOW, NOW + 4 * HOUR);
      await first.writeAlertEvents(events);
      await first.saveSilence(window);
      await first.close();
      await first.close(); // idempotent
      await expect(first.alertEvents(10)).rejects.toThrow(/closed/);

      const again = await fx.open(spec);
      expect(await again.alertEvents(10)).toEqual(events);
      expect(await again.silences(NOW)).toEqual([window]);
      expect(await countRows(spec, 'SELECT count(*) AS n FROM schema_migrations')).toBe(
        (fx.engine === 'sqlite' ? sqliteMigrations : postgresMigrations).length,
      );
    });

    it('upgrades a store created by the previous migration set, keeping its data', async () => {
      const spec = fx.freshSpec();
      const run: ProbeRecord = {
        time: NOW - MINUTE,
        name: 'legacy',
        kind: 'tcp',
        target: 'db.internal:5432',
        ok: true,
        durationSeconds: 0.012,
        phases: {},
      };
      await createAtVersion1(fx, spec, run);
      expect(await countRows(spec, 'SELECT count(*) AS n FROM schema_migrations')).toBe(1);

      const store = await fx.open(spec);
      expect(await countRows(spec, 'SELECT count(*) AS n FROM schema_migrations WHERE version = 2')).toBe(1);
      const exported: ProbeRecord[] = [];
      for await (const r of store.exportProbes('legacy', NOW - HOUR, NOW)) exported.push(r);
      expect(exported).toEqual([run]);
      await store.writeAlertEvents([ev('legacy-down', NOW, 'ok', 'firing', 1)]);
      await store.saveSilence(silence('after-upgrade', NOW, NOW + HOUR));
      expect(await store.alertEvents(5)).toEqual([ev('legacy-down', NOW, 'ok', 'firing', 1)]);
      expect((await store.silences(NOW)).map((s) => s.id)).toEqual(['after-upgrade']);
      expect(await store.integrityCheck()).toBe('ok');
    });
  });
}
