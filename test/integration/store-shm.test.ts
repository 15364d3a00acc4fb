// SQLite maps its -shm file into memory in WAL mode; another process truncating that file used to kill
// the agent with SIGBUS at its next write (issue 9, item 9), with no log line. Before the guard, this
// file's test worker died of that signal.
import Database from 'better-sqlite3';
import { statSync, truncateSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ShmTruncatedError } from '../../src/store/sqlite/shm-guard.js';
import type { ProbeRecord, ResultStore } from '../../src/store/types.js';
import { BatchedWriter } from '../../src/store/writer.js';
import { until } from '../support/async.js';
import { sqliteFixture } from './store-support.js';

let seq = 0;
const probe = (): ProbeRecord => ({
  time: Date.now(),
  name: 'shm',
  kind: 'tcp',
  target: 'h:1',
  ok: true,
  durationSeconds: 0.001 + (seq++ % 100) / 1e5,
  phases: { connect: 0.001 },
});

async function rows(store: ResultStore): Promise<number> {
  let n = 0;
  for await (const _ of store.exportProbes('shm', 0, Date.now() + 60_000)) n++;
  return n;
}

describe('a SQLite -shm file truncated by another process', () => {
  const sqlite = sqliteFixture();
  afterAll(() => sqlite.cleanup());

  it('fails one write through the writer (logged once, counted), then writing goes on and nothing is lost', async () => {
    const spec = sqlite.freshSpec();
    const file = spec.slice('sqlite:'.length);
    const store = await sqlite.open(spec);
    const errors: unknown[] = [];
    const w = new BatchedWriter(store, {
      flushIntervalMs: 20,
      minBackoffMs: 10,
      maxBackoffMs: 50,
      onError: (e) => errors.push(e),
    });
    for (let i = 0; i < 100; i++) w.pushProbe(probe());
    await until(() => w.stats().written === 100, 'the first batch written');
    const size = statSync(`${file}-shm`).size;
    expect(size).toBeGreaterThan(0);

    for (let round = 0; round < 3; round++) {
      truncateSync(`${file}-shm`, 0);
      for (let i = 0; i < 100; i++) w.pushProbe(probe());
      await until(() => w.stats().written === 200 + round * 100, `round ${round} written`, 10_000);
    }
    const s = w.stats();
    expect(s).toMatchObject({ written: 400, dropped: 0, queued: 0, writeErrors: 3 });
    expect(s.lastError).toBeUndefined();
    // One log line per distinct failure: the same message three times in a row would be one, but each
    // truncation was followed by a success, so each is reported.
    expect(errors).toHaveLength(3);
    for (const e of errors) expect(e).toBeInstanceOf(ShmTruncatedError);
    expect(statSync(`${file}-shm`).size).toBe(size);

    expect(await rows(store)).toBe(400);
    const other = new Database(file, { readonly: true });
    try {
      expect(other.prepare('SELECT sum(n) AS n FROM probe_chunks').get()).toEqual({ n: 400 });
      expect(other.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      other.close();
    }
    await w.close();
  });

  it('fails one read (the API answers 500 once), then reads work', async () => {
    const spec = sqlite.freshSpec();
    const file = spec.slice('sqlite:'.length);
    const store = await sqlite.open(spec);
    await store.writeProbes([probe(), probe()]);
    truncateSync(`${file}-shm`, 0);
    await expect(rows(store)).rejects.toBeInstanceOf(ShmTruncatedError);
    expect(await rows(store)).toBe(2);
  });
});
