import { createServer, type AddressInfo, type Server } from 'node:net';
import type { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogFields, Logger } from '../../core/log.js';
import type { Observation } from '../../core/types.js';
import { probes } from '../registry.js';
import type { ProbeTarget } from './plan.js';
import { ProbeWorkerPool, type ProbeWorkerSink } from './pool.js';

// The pool runs the built worker (dist/probes/workers/probe-worker.js; vitest's pretest builds it).

let server: Server;
let connections = 0;
let port = 0;

beforeAll(async () => {
  server = createServer((c) => {
    connections++;
    c.on('error', () => {});
    c.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const targets = (n: number, intervalMs: number): ProbeTarget[] =>
  Array.from({ length: n }, (_, i) => ({
    name: `t${i}`,
    kind: 'tcp',
    target: `127.0.0.1:${port}`,
    intervalMs,
    timeoutMs: Math.min(1000, intervalMs - 10),
    options: probes.tcp.options.parse({}),
  }));

function recorder() {
  const observed: Observation[] = [];
  const skipped: { id: string; reason: string }[] = [];
  let started = 0;
  const sink: ProbeWorkerSink = {
    observe: (o) => observed.push(o),
    lateness: () => started++,
    skipped: (id, reason) => skipped.push({ id, reason }),
  };
  return { sink, observed, skipped, started: () => started };
}

function memoryLog() {
  const lines: { level: string; msg: string; fields: LogFields | undefined }[] = [];
  const log: Logger = {
    debug: (msg, fields) => lines.push({ level: 'debug', msg, fields }),
    info: (msg, fields) => lines.push({ level: 'info', msg, fields }),
    warn: (msg, fields) => lines.push({ level: 'warn', msg, fields }),
    error: (msg, fields) => lines.push({ level: 'error', msg, fields }),
    child: () => log,
  };
  return { log, lines };
}

/** Resolves once `cond` holds, polling every 20 ms; fails after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('ProbeWorkerPool', () => {
  it('restarts a worker that stopped on its own, logs it, and counts the slots it missed', async () => {
    const rec = recorder();
    const { log, lines } = memoryLog();
    const workers: Worker[] = [];
    const shard = targets(4, 100);
    const pool = new ProbeWorkerPool([shard.slice(0, 2), shard.slice(2)], rec.sink, {
      log,
      restartDelayMs: 300,
      onWorker: (i, w) => (workers[i] = w),
    });
    pool.start();
    try {
      await until(() => new Set(rec.observed.map((o) => o.name)).size === 4, 10_000, 'a run of every target');
      const first = workers[1]!;
      const skippedBefore = rec.skipped.length;
      await first.terminate();
      const crashedAt = rec.observed.length;
      // Check-now of a target whose worker is down says so, rather than waiting.
      await expect(pool.runNow('t2')).rejects.toThrow(/restarting/);
      await until(() => workers[1] !== first, 5000, 'the restart');
      const error = lines.find((l) => l.level === 'error');
      expect(error?.msg).toMatch(
        /^probe worker 1 stopped \(exit code 1\): its 2 targets .* restarts in 0\.3 s$/,
      );
      expect(error?.fields).toMatchObject({ worker: 1, targets: 2, exitCode: 1 });
      expect(pool.stats()).toEqual({ workers: 2, targets: 4, restarts: 1 });
      // Its targets run again.
      await until(
        () => rec.observed.slice(crashedAt).filter((o) => o.name === 't2' || o.name === 't3').length >= 4,
        10_000,
        'runs of the restarted worker',
      );
      expect(
        lines.some((l) => l.level === 'info' && /^probe worker 1 restarted with its 2 targets$/.test(l.msg)),
      ).toBe(true);
      // About 300 ms down at 100 ms an interval (plus the new thread's start): its slots in between were
      // skipped, and said so; the other worker's targets lost none.
      const missed = rec.skipped.slice(skippedBefore).filter((s) => s.reason === 'stalled');
      expect(missed.length).toBeGreaterThanOrEqual(2 * 2);
      expect(new Set(missed.map((s) => s.id))).toEqual(new Set(['t2', 't3']));
    } finally {
      await pool.close();
    }
  });

  it('logs the error a worker thread died of, and restarts it', async () => {
    const rec = recorder();
    const { log, lines } = memoryLog();
    const workers: Worker[] = [];
    const pool = new ProbeWorkerPool([targets(2, 100)], rec.sink, {
      log,
      restartDelayMs: 100,
      onWorker: (i, w) => (workers[i] = w),
    });
    pool.start();
    try {
      await until(() => rec.observed.length >= 2, 10_000, 'runs');
      const first = workers[0]!;
      // A message the worker does not know is a bug between the two files: it throws, uncaught.
      first.postMessage({ type: 'no-such-message' });
      await until(() => workers[0] !== first, 5000, 'the restart');
      const error = lines.find((l) => l.level === 'error');
      expect(error?.msg).toMatch(
        /^probe worker 0 stopped \(probe worker: unknown message .*no-such-message.*\): its 2 targets/,
      );
      expect(error?.fields?.err).toBeInstanceOf(Error);
      const n = rec.observed.length;
      await until(() => rec.observed.length >= n + 2, 10_000, 'runs after the restart');
    } finally {
      await pool.close();
    }
  });

  it('check-now answers after the fresh result has reached the sink', async () => {
    const rec = recorder();
    const pool = new ProbeWorkerPool([targets(3, 60_000)], rec.sink);
    pool.start();
    try {
      const before = connections;
      const n = rec.observed.length;
      await pool.runNow('t1');
      expect(connections - before).toBeGreaterThanOrEqual(1);
      const fresh = rec.observed.slice(n).filter((o) => o.name === 't1');
      expect(fresh.length).toBeGreaterThanOrEqual(1);
      expect(
        fresh.at(-1)!.result,
        JSON.stringify(fresh.at(-1), (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)),
      ).toMatchObject({ ok: true, phases: { connect: expect.any(BigInt) } });
      await expect(pool.runNow('nope')).rejects.toThrow(/no target nope/);
    } finally {
      await pool.close();
    }
  });

  it('close() hands over every measured result still in a batch, and stops promptly', async () => {
    const rec = recorder();
    // Batches that would not leave for a minute: without the last one at the stop, all would be lost.
    const pool = new ProbeWorkerPool([targets(5, 100)], rec.sink, { batchMs: 60_000, maxBatch: 100_000 });
    const before = connections;
    pool.start();
    await until(() => connections - before >= 20, 10_000, '20 connections');
    expect(rec.observed.length).toBe(0);
    const t0 = performance.now();
    await pool.close();
    expect(performance.now() - t0).toBeLessThan(1500);
    const seen = connections - before;
    // Every connection the listener saw was a run whose result came back, but those still in flight
    // when the thread was terminated (at most one per target).
    expect(rec.observed.length).toBeGreaterThanOrEqual(seen - 5);
    expect(rec.observed.length).toBeLessThanOrEqual(seen);
    expect(rec.started()).toBeGreaterThanOrEqual(rec.observed.length);
    await expect(pool.runNow('t0')).rejects.toThrow(/stopping/);
    await pool.close();
  });
});
