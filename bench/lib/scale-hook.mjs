// @ts-check
/**
 * Loaded into the agent under test by bench/scale.mjs (NODE_OPTIONS=--import=<this file>), before the
 * CLI. It measures what the agent's /metrics cannot say and the scale bench needs, and writes it as
 * JSON to $SCALE_HOOK_OUT every 2 s and at exit:
 *
 * - every synchronous SQLite call (better-sqlite3 transactions, statements, exec, pragma), timed
 *   outermost-only: the longest is the longest event-loop block the SQLite store caused;
 * - every rollup of the store (start and end on the monotonic clock, which faketime leaves alone when
 *   FAKETIME_DONT_FAKE_MONOTONIC=1, so the bench can line them up with its own scrape times);
 * - event-loop gaps: a 10 ms interval timer that fires more than 20 ms late records when and by how much.
 *
 * Each call and gap also records how long the main thread waited for a CPU meanwhile (schedstat), so a
 * gap made by other processes' load on a shared machine is not taken for the agent's own block. It
 * changes nothing the agent does; the wrappers add two clock and two schedstat reads per SQLite call.
 */
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const out = process.env.SCALE_HOOK_OUT;
const nowNs = () => process.hrtime.bigint();
/** Monotonic seconds (system-wide CLOCK_MONOTONIC, the same clock the bench reads). */
const monoS = () => Number(nowNs()) / 1e9;
const GAP_TICK_MS = 10;
const GAP_MIN_MS = 20;
const MAX_LIST = 5000;
const SCHEDSTAT = `/proc/self/task/${process.pid}/schedstat`;
/**
 * Milliseconds the main thread has spent runnable but waiting for a CPU (schedstat's second field):
 * a gap that is mostly this was other processes' load, not the agent's own work. NaN without it.
 */
const waitMs = () => {
  try {
    return Number(readFileSync(SCHEDSTAT, 'utf8').split(' ')[1]) / 1e6;
  } catch {
    return NaN;
  }
};

const state = {
  pid: process.pid,
  startMonoS: monoS(),
  /** Date.now() (faked or not) at the hook's start, with the monotonic time of the reading. */
  wallAtStart: Date.now(),
  wallNow: Date.now(),
  monoNowS: monoS(),
  sqlite: {
    wrapped: false,
    why: '',
    calls: 0,
    totalMs: 0,
    maxMs: 0,
    over20ms: 0,
    /** Calls over 5 ms since the last dump: monotonic start (s), duration and CPU wait within it (ms), what. */
    long: /** @type {{ atS: number, ms: number, waitMs: number, what: string }[]} */ ([]),
  },
  rollups:
    /** @type {{ startS: number, endS: number, ms: number, ok: boolean, wallAtStart: number }[]} */ ([]),
  rollupWrapped: false,
  rollupWhy: '',
  loop: {
    ticks: 0,
    maxMs: 0,
    over20ms: 0,
    over100ms: 0,
    /** Gaps over 20 ms since the last dump: when the late tick ran (monotonic s), how late, and how much of the time
     * since the previous tick the thread waited for a CPU (ms). */
    gaps: /** @type {{ atS: number, ms: number, waitMs: number }[]} */ ([]),
  },
};

// ------------------------------------------------------------------ SQLite: every synchronous call
try {
  const require = createRequire(new URL('../../package.json', import.meta.url));
  /** @type {any} */
  const Database = require('better-sqlite3');
  let depth = 0;
  /** @param {number} startS @param {number} ms @param {number} wait @param {string} what */
  const record = (startS, ms, wait, what) => {
    const s = state.sqlite;
    s.calls++;
    s.totalMs += ms;
    if (ms > s.maxMs) s.maxMs = ms;
    if (ms > GAP_MIN_MS) s.over20ms++;
    if (ms > 5) s.long.push({ atS: startS, ms, waitMs: wait, what });
  };
  /**
   * Times the outermost synchronous call only: statements inside a transaction are part of it.
   * @param {string} what @param {(...a: unknown[]) => unknown} fn
   */
  const timed = (what, fn) =>
    /** @this {unknown} @param {unknown[]} a */
    function (...a) {
      if (depth > 0) return fn.apply(this, a);
      depth++;
      const w0 = waitMs();
      const t0 = nowNs();
      try {
        return fn.apply(this, a);
      } finally {
        depth--;
        const t1 = nowNs();
        record(Number(t0) / 1e9, Number(t1 - t0) / 1e6, waitMs() - w0, what);
      }
    };
  const dbProto = Database.prototype;
  for (const m of ['exec', 'pragma']) dbProto[m] = timed(m, dbProto[m]);
  const transaction = dbProto.transaction;
  dbProto.transaction = function (/** @type {unknown} */ fn) {
    const tx = transaction.call(this, fn);
    const w = /** @type {any} */ (timed('transaction', tx));
    for (const v of ['default', 'deferred', 'immediate', 'exclusive'])
      if (typeof tx[v] === 'function') w[v] = timed(`transaction.${v}`, tx[v]);
    return w;
  };
  const probe = new Database(':memory:');
  const stmtProto = Object.getPrototypeOf(probe.prepare('SELECT 1'));
  probe.close();
  for (const m of ['run', 'get', 'all']) stmtProto[m] = timed(`statement.${m}`, stmtProto[m]);
  state.sqlite.wrapped = true;
} catch (err) {
  state.sqlite.why = String(/** @type {Error} */ (err)?.message ?? err);
}

// ------------------------------------------------------------------ rollups
// A rollup is the store's processDirty for tier 1, then tier 2, then applyRetention (src/store/store.ts).
// The backends are wrapped, not Store: the launcher may run the CLI from a bundle (dist/bundle) whose
// Store class is not exported, while each engine's backend module is (the bundle imports it by name).
// Both the tsc output and the bundle's chunks are wrapped; the agent uses one of them.
try {
  const dist = new URL('../../dist/', import.meta.url);
  const candidates = ['store/sqlite/sqlite-store.js', 'store/postgres/postgres-store.js'];
  try {
    for (const f of readdirSync(new URL('bundle/', dist)))
      if (/^(sqlite|postgres)-store-.*\.js$/.test(f)) candidates.push(`bundle/${f}`);
  } catch {
    // no bundle
  }
  /** @type {{ startS: number, endS: number, ms: number, ok: boolean, wallAtStart: number } | undefined} */
  let open;
  const wrapped = [];
  for (const c of candidates) {
    /** @type {any} */
    let mod;
    try {
      mod = await import(new URL(c, dist).href);
    } catch {
      continue;
    }
    for (const Backend of [mod.SqliteBackend, mod.PostgresBackend]) {
      if (typeof Backend?.prototype?.processDirty !== 'function') continue;
      const processDirty = Backend.prototype.processDirty;
      const applyRetention = Backend.prototype.applyRetention;
      Backend.prototype.processDirty = function (/** @type {unknown[]} */ ...a) {
        if (a[0] === 1) {
          // Listed when it starts (endS NaN while it runs), so the bench can wait for one to finish.
          open = { startS: monoS(), endS: NaN, ms: NaN, ok: false, wallAtStart: Date.now() };
          if (state.rollups.length < MAX_LIST) state.rollups.push(open);
        }
        return processDirty.apply(this, a);
      };
      Backend.prototype.applyRetention = async function (/** @type {unknown[]} */ ...a) {
        const entry = open;
        open = undefined;
        try {
          const r = await applyRetention.apply(this, a);
          if (entry) entry.ok = true;
          return r;
        } finally {
          if (entry) {
            entry.endS = monoS();
            entry.ms = (entry.endS - entry.startS) * 1e3;
            dump();
          }
        }
      };
      wrapped.push(c);
    }
  }
  state.rollupWrapped = wrapped.length > 0;
  if (!wrapped.length) state.rollupWhy = `no store backend found in ${candidates.join(', ')}`;
} catch (err) {
  state.rollupWhy = String(/** @type {Error} */ (err)?.message ?? err);
}

// ------------------------------------------------------------------ event-loop gaps
let expected = performance.now() + GAP_TICK_MS;
let lastWait = waitMs();
setInterval(() => {
  const now = performance.now();
  const late = now - expected;
  expected = now + GAP_TICK_MS;
  const wait = waitMs();
  const waited = wait - lastWait;
  lastWait = wait;
  const l = state.loop;
  l.ticks++;
  if (late > l.maxMs) l.maxMs = late;
  if (late > GAP_MIN_MS) {
    l.over20ms++;
    if (late > 100) l.over100ms++;
    l.gaps.push({ atS: monoS(), ms: late, waitMs: waited });
  }
}, GAP_TICK_MS).unref();

/**
 * Writes the summary to $SCALE_HOOK_OUT and appends the calls and gaps listed since the last time to
 * $SCALE_HOOK_OUT.sqlite.ndjson and .gaps.ndjson, so each write is small however long the agent runs
 * (the hook runs on the agent's thread: a big write would be a block of its own).
 */
function dump() {
  if (!out) return;
  state.wallNow = Date.now();
  state.monoNowS = monoS();
  try {
    /** @param {string} file @param {object[]} list */
    const flush = (file, list) => {
      if (list.length) appendFileSync(file, list.map((e) => JSON.stringify(e)).join('\n') + '\n');
      list.length = 0;
    };
    flush(`${out}.sqlite.ndjson`, state.sqlite.long);
    flush(`${out}.gaps.ndjson`, state.loop.gaps);
    writeFileSync(out, JSON.stringify(state));
  } catch {
    // The bench's temp dir is gone: nothing to report to.
  }
}
setInterval(dump, 2000).unref();
process.on('exit', dump);
