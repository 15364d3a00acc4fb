// @ts-check
/**
 * One agent at scale (issue 11): the real `coalmine run` with 1,000 / 5,000 / 10,000 / 20,000 TCP
 * targets and 1,000 HTTP targets against the bench's own loopback servers, each step long enough to
 * cross an hour boundary of the store's rollup, and blackbox_exporter driven at the same probe rate in
 * the same run for CPU and RSS. See bench/README.md, "scale.mjs".
 *
 *   npm run build && node bench/scale.mjs                 # shortened mode, about 11 minutes
 *   node bench/scale.mjs --targets 1000 --http 0 --seconds 90
 *   node bench/scale.mjs --full --targets 10000 --http 1000   # 2 hours a step, real clock
 *   node bench/scale.mjs --workers 0,1 --targets 10000,20000 --tcp-interval 2 --http 0 --no-faketime --seconds 60
 *                                                        # probes.workers off vs on, agent on both cores
 *
 * The shortened mode runs the agent under libfaketime (realtime clock shifted, monotonic clock left
 * alone) so its wall clock crosses the hour a set time into each step; the output says so.
 * Progress on stderr, tables on stdout, JSON in bench/out/. A missed goal prints FAIL; exit code 0.
 */
import { execFile } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { get } from 'node:http';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { blackboxVersion, startBlackbox } from './lib/blackbox.mjs';
import {
  CPUS,
  TASKSET,
  killAll,
  runBench,
  killPid,
  log,
  nextMessage,
  procCpuSeconds,
  runChild,
  sleep,
  spawnChild,
  spawnTracked,
  freePort,
} from './lib/procs.mjs';
import {
  countAbove,
  distinctLabel,
  histDelta,
  histogramOf,
  maxBucket,
  pickSamples,
  quantileBucket,
  sumOf,
} from './lib/scale-metrics.mjs';
import { fmtRatio, fmtSeconds, median } from './lib/stats.mjs';
import { flag, value } from './lib/args.mjs';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCALE_CHILD = fileURLToPath(new URL('./lib/scale-child.mjs', import.meta.url));
const HOOK = new URL('./lib/scale-hook-main.mjs', import.meta.url).href;
const FAKETIME_LIBS = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/faketime/libfaketimeMT.so.1',
];
const HOUR_MS = 3_600_000;
/** How much longer than --seconds a step may run while it waits for the rollup after the hour. */
const ROLLUP_WAIT_S = 120;

// ---------------------------------------------------------------- options

if (flag('help') || flag('h')) {
  process.stdout.write(
    'usage: node bench/scale.mjs [--full] [--targets 1000,5000,10000,20000] [--http 1000] [--seconds N]\n' +
      '       [--peer-seconds N] [--tcp-interval 15] [--http-interval 1] [--scrape-every 15] [--cross-at 40]\n' +
      '       [--store sqlite | --store postgres://postgres@127.0.0.1:5432/test] [--no-faketime] [--no-build]\n' +
      '       [--workers 0,1]   each TCP step once per probes.workers setting (0, a number, auto), the agent on\n' +
      '                         every core instead of core 0; a table compares them and blackbox_exporter\n',
  );
  process.exit(0);
}
const full = flag('full');
/** @param {string} name @param {number} dflt */
const num = (name, dflt) => {
  const v = value(name);
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number >= 0 (got ${v})`);
  return n;
};
const opts = {
  full,
  tcpSteps: (value('targets') ?? '1000,5000,10000,20000')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number),
  http: num('http', 1000),
  seconds: num('seconds', full ? 7200 : 90),
  peerSeconds: num('peer-seconds', full ? 60 : 20),
  tcpIntervalS: num('tcp-interval', 15),
  httpIntervalS: num('http-interval', 1),
  scrapeEveryS: num('scrape-every', 15),
  crossAtS: num('cross-at', 40),
  store: value('store') ?? 'sqlite',
  faketime: !full && !flag('no-faketime'),
  /** probes.workers settings to run each TCP step with; undefined: once, with the config's default. */
  workers: value('workers')
    ?.split(',')
    .map((w) => w.trim())
    .filter(Boolean),
  build: !flag('no-build'),
};
for (const n of opts.tcpSteps)
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--targets: positive whole numbers (got ${n})`);
for (const w of opts.workers ?? [])
  if (w !== 'auto' && !/^\d+$/.test(w))
    throw new Error(`--workers: 0, a number of threads or auto (got ${w})`);
if (opts.store !== 'sqlite' && !/^postgres(ql)?:\/\//.test(opts.store))
  throw new Error('--store: sqlite or a postgres:// URL');
const FAKETIME_LIB = FAKETIME_LIBS.find((f) => existsSync(f));
if (opts.faketime && !FAKETIME_LIB)
  throw new Error('libfaketime not found (Debian package faketime); use --no-faketime or --full');

const tmp = mkdtempSync(join(tmpdir(), 'coalmine-scale-'));
const monoS = () => Number(process.hrtime.bigint()) / 1e9;

// ---------------------------------------------------------------- small helpers

/** @param {number} pid */
function procRssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/**
 * Seconds the process's main thread has spent runnable but waiting for a CPU (schedstat): how much
 * other processes' load took from the agent. @param {number} pid
 */
function threadWaitS(pid) {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
  } catch {
    return NaN;
  }
}

/** Samples RSS once a second until the returned function is called. @param {number} pid */
function rssSampler(pid) {
  /** @type {number[]} */
  const samples = [];
  const timer = setInterval(() => {
    try {
      samples.push(procRssBytes(pid));
    } catch {
      // gone
    }
  }, 1000);
  return () => {
    clearInterval(timer);
    return { max: samples.length ? Math.max(...samples) : NaN, median: median(samples), n: samples.length };
  };
}

/**
 * One GET of /metrics: time to the last byte, size, and the text when `keep`.
 * @param {string} url @param {boolean} keep
 * @returns {Promise<{ startS: number, endS: number, ms: number, bytes: number, status: number, text?: string, cpuS?: number }>}
 */
function scrape(url, keep) {
  return new Promise((resolve, reject) => {
    const startS = monoS();
    const req = get(url, (res) => {
      let bytes = 0;
      /** @type {Buffer[]} */
      const chunks = [];
      res.on('data', (/** @type {Buffer} */ c) => {
        bytes += c.length;
        if (keep) chunks.push(c);
      });
      res.on('end', () => {
        const endS = monoS();
        resolve({
          startS,
          endS,
          ms: (endS - startS) * 1e3,
          bytes,
          status: res.statusCode ?? 0,
          ...(keep ? { text: Buffer.concat(chunks).toString('utf8') } : {}),
        });
      });
      res.on('error', reject);
    });
    req.setTimeout(120_000, () => req.destroy(new Error('scrape took over 120 s')));
    req.on('error', reject);
  });
}

const FAMILIES = [
  'coalmine_probes',
  'coalmine_scheduler_lateness_seconds',
  'coalmine_scheduler_skipped_runs',
  'coalmine_scheduler_late_runs',
  'coalmine_agent_event_loop_delay_seconds',
  'coalmine_store_written',
  'coalmine_store_dropped',
  'coalmine_store_write_errors',
  'coalmine_store_queued',
];

/** The figures of one /metrics reading that the step needs. @param {string} text */
function reading(text) {
  const s = pickSamples(text, FAMILIES);
  return {
    probes: sumOf(s, 'coalmine_probes_total'),
    probesOk: sumOf(s, 'coalmine_probes_total', ['result="success"']),
    probeTargets: distinctLabel(s, 'coalmine_probes_total', 'target'),
    lateness: histogramOf(s, 'coalmine_scheduler_lateness_seconds'),
    overlap: sumOf(s, 'coalmine_scheduler_skipped_runs_total', ['reason="overlap"']),
    stalled: sumOf(s, 'coalmine_scheduler_skipped_runs_total', ['reason="stalled"']),
    lateRuns: sumOf(s, 'coalmine_scheduler_late_runs_total'),
    loopDelay: histogramOf(s, 'coalmine_agent_event_loop_delay_seconds'),
    written: sumOf(s, 'coalmine_store_written_total'),
    dropped: sumOf(s, 'coalmine_store_dropped_total'),
    writeErrors: sumOf(s, 'coalmine_store_write_errors_total'),
    queued: sumOf(s, 'coalmine_store_queued'),
  };
}

/** @param {number} b */
const mb = (b) => (Number.isFinite(b) ? `${(b / 1e6).toFixed(1)} MB` : 'n/a');
/** @param {number} b */
const bytesShort = (b) =>
  !Number.isFinite(b)
    ? 'n/a'
    : b >= 1e6
      ? `${(b / 1e6).toFixed(2)} MB`
      : b >= 1e3
        ? `${(b / 1e3).toFixed(1)} kB`
        : `${Math.round(b)} B`;
/** @param {{ lo: number, hi: number } | undefined} b */
const bucketText = (b) => (!b ? 'n/a' : b.hi === Infinity ? `>${fmtSeconds(b.lo)}` : `<=${fmtSeconds(b.hi)}`);
/** @param {number} ms */
const msText = (ms) => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : 'n/a');
/** @param {number} ms */
const clockText = (ms) => new Date(ms).toISOString().slice(11, 19);

/** @param {string[]} args */
async function psql(args) {
  const url = new URL(opts.store);
  url.search = '';
  const r = await run('psql', [url.toString(), '-At', '-v', 'ON_ERROR_STOP=1', ...args]);
  return r.stdout.trim();
}

// ---------------------------------------------------------------- fixtures

/** TCP listeners (8 ports, as bench/probes.mjs's scheduler section) and one HTTP server, on core 1. */
async function startTargets() {
  const tcp = spawnChild('serve-tcp', { ports: 8 }, { cpu: 1 });
  const http = spawnChild('serve-http', {}, { cpu: 1 });
  const [t, h] = await Promise.all([nextMessage(tcp, 'ready', 10_000), nextMessage(http, 'ready', 10_000)]);
  return { tcpPorts: /** @type {number[]} */ (t.ports), httpPort: /** @type {number} */ (h.ports[0]) };
}

/**
 * @typedef {{ name: string, kind: 'tcp' | 'http', n: number, intervalS: number, timeoutMs: number, targets: string[], workers?: string }} Step
 */

/** @param {Step} step @param {string} storeUrl */
function configText(step, storeUrl) {
  const lines = [
    '# Written by coalmine bench/scale.mjs.',
    `interval: ${step.intervalS * 1000}ms`,
    `timeout: ${step.timeoutMs}ms`,
    ...(step.workers !== undefined ? [`probes: { workers: ${step.workers} }`] : []),
    'targets:',
  ];
  step.targets.forEach((t, i) =>
    lines.push(`  - name: ${step.kind}-${i}`, `    kind: ${step.kind}`, `    target: '${t}'`),
  );
  lines.push('store:', `  url: '${storeUrl}'`);
  return lines.join('\n') + '\n';
}

/**
 * Stops the agent as a user does (SIGTERM: it stops probing, flushes and closes the store), allowing
 * `graceS`; then by SIGKILL. @param {import('node:child_process').ChildProcess} proc @param {number} graceS
 */
async function stopAgent(proc, graceS) {
  const t0 = monoS();
  if (proc.exitCode !== null || proc.signalCode !== null) return { seconds: 0, clean: false };
  const exited = new Promise((r) => proc.once('exit', r));
  try {
    process.kill(/** @type {number} */ (proc.pid), 'SIGTERM');
  } catch {
    return { seconds: 0, clean: false };
  }
  const clean = await Promise.race([exited.then(() => true), sleep(graceS * 1000).then(() => false)]);
  if (!clean) await killPid(proc);
  return { seconds: monoS() - t0, clean };
}

// ---------------------------------------------------------------- our agent, one step

/** @param {Step} step @param {number} index */
async function runOurs(step, index) {
  const dir = mkdtempSync(join(tmp, `${step.name}-`));
  const schema = `coalmine_scale_${process.pid}_${index}`;
  let storeUrl = `sqlite:${join(dir, 'coalmine.db')}`;
  if (opts.store !== 'sqlite') {
    const u = new URL(opts.store);
    u.searchParams.set('schema', schema);
    storeUrl = u.toString();
  }
  const config = join(dir, 'coalmine.yaml');
  writeFileSync(config, configText(step, storeUrl));
  const port = /** @type {number} */ (await freePort());
  const hookOut = join(dir, 'hook.json');
  const nodeDir = dirname(process.execPath);
  /** @type {NodeJS.ProcessEnv} */
  const env = {
    ...process.env,
    PATH: `${nodeDir}:${process.env.PATH ?? ''}`,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${HOOK}`.trim(),
    SCALE_HOOK_OUT: hookOut,
  };
  // Shift the agent's realtime clock so it reads HH:00:00 `crossAtS` seconds after the spawn; the
  // monotonic clock (timers, durations, the hook's timestamps) stays real.
  let offsetS = 0;
  let hourMs = NaN;
  const spawnWall = Date.now();
  if (opts.faketime) {
    const crossWall = spawnWall + opts.crossAtS * 1000;
    hourMs = Math.ceil(crossWall / HOUR_MS) * HOUR_MS;
    offsetS = Math.round((hourMs - crossWall) / 1000);
    Object.assign(env, {
      LD_PRELOAD: `${FAKETIME_LIB}${process.env.LD_PRELOAD ? ` ${process.env.LD_PRELOAD}` : ''}`,
      FAKETIME: `+${offsetS}`,
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    });
  } else {
    hourMs = Math.ceil(spawnWall / HOUR_MS) * HOUR_MS;
  }
  log(
    `${step.name}: coalmine run, ${step.n} ${step.kind} targets every ${step.intervalS} s, ${opts.seconds} s, store ${opts.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'}` +
      (opts.faketime
        ? `, clock +${offsetS} s (faketime) to cross ${clockText(hourMs)} at ${opts.crossAtS} s`
        : ''),
  );
  const agentLog = join(dir, 'agent.log');
  const logFd = openSync(agentLog, 'a');
  const t0 = monoS();
  const proc = spawnTracked(
    'coalmine run',
    join(ROOT, 'bin/coalmine'),
    ['run', '-c', config, '-l', `127.0.0.1:${port}`, '--log-level', 'warn'],
    // With --workers the agent may use every core (its threads would share one otherwise), in both runs.
    { ...(opts.workers ? {} : { cpu: 0 }), env, stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  const pid = /** @type {number} */ (proc.pid);
  const base = `http://127.0.0.1:${port}`;
  try {
    for (;;) {
      const ok = await new Promise((resolve) => {
        const req = get(`${base}/healthz`, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        });
        req.on('error', () => resolve(false));
      });
      if (ok) break;
      if (proc.exitCode !== null || monoS() - t0 > 120)
        throw new Error(
          `coalmine run did not answer /healthz (exit ${proc.exitCode}): ${readFileSync(agentLog, 'utf8').slice(-800)}`,
        );
      await sleep(200);
    }
    const readyS = monoS() - t0;
    // An empty store but for its schema and series: what the results add is measured from here.
    const baseBytes = await storeBytes(dir, schema);
    log(`${step.name}: agent ready after ${readyS.toFixed(1)} s`);

    const warmupS = Math.max(5, Math.min(step.intervalS, opts.seconds / 4));
    await sleep(Math.max(0, t0 + warmupS - monoS()) * 1000);
    // The agent's CPU while each scrape was answered, so CPU per probe can be given without it too.
    const timedScrape = async (/** @type {boolean} */ keep) => {
      const c0 = procCpuSeconds(pid);
      const s = await scrape(`${base}/metrics`, keep);
      s.cpuS = procCpuSeconds(pid) - c0;
      return s;
    };
    const rss = rssSampler(pid);
    const wait0 = threadWaitS(pid);
    const cpu0 = procCpuSeconds(pid);
    const first = await timedScrape(true);
    const r0 = reading(/** @type {string} */ (first.text));
    const scrapes = [first];
    let last = first;
    // The step lasts --seconds, and longer (up to ROLLUP_WAIT_S more, polled each second) until a
    // rollup that began after the hour boundary has finished, so every step shows one.
    const endAt = t0 + opts.seconds;
    const limit = endAt + (opts.faketime || opts.seconds >= 3600 ? ROLLUP_WAIT_S : 0);
    const rollupDone = () => {
      try {
        const h = JSON.parse(readFileSync(hookOut, 'utf8'));
        return h.rollups.some((/** @type {any} */ r) => r.ok && r.wallAtStart >= hourMs);
      } catch {
        return false;
      }
    };
    let told = false;
    for (;;) {
      const now = monoS();
      if (now >= endAt - 0.05) {
        if (rollupDone() || now >= limit) {
          last = await timedScrape(true);
          scrapes.push(last);
          break;
        }
        if (!told) log(`${step.name}: waiting for the rollup after ${clockText(hourMs)} to finish`);
        told = true;
      }
      const nextAt = last.startS + opts.scrapeEveryS;
      // The last scrape is the one at the end: none in the second before it.
      const scrapeNext = nextAt < endAt - 1 || now >= endAt;
      const wakeAt = now >= endAt ? Math.min(now + 1, nextAt) : scrapeNext ? nextAt : endAt;
      await sleep(Math.max(0, wakeAt - monoS()) * 1000);
      if (scrapeNext && monoS() >= nextAt - 0.005) {
        last = await timedScrape(false);
        scrapes.push(last);
        log(
          `${step.name}: t=${(last.startS - t0).toFixed(0)} s scrape ${msText(last.ms)}, ${bytesShort(last.bytes)}`,
        );
      }
    }
    const cpu = procCpuSeconds(pid) - cpu0;
    const waitS = threadWaitS(pid) - wait0;
    const r1 = reading(/** @type {string} */ (last.text));
    const mem = rss();
    const windowS = (last.startS + last.endS) / 2 - (first.startS + first.endS) / 2;
    const stop = await stopAgent(proc, 30);
    const runS = monoS() - t0;
    /** @type {any} */
    let hook;
    try {
      hook = JSON.parse(readFileSync(hookOut, 'utf8'));
      /** @param {string} file */
      const ndjson = (file) =>
        existsSync(file)
          ? readFileSync(file, 'utf8')
              .split('\n')
              .filter(Boolean)
              .map((l) => JSON.parse(l))
          : [];
      hook.sqlite.long = ndjson(`${hookOut}.sqlite.ndjson`);
      hook.loop.gaps = ndjson(`${hookOut}.gaps.ndjson`);
    } catch (err) {
      hook = { error: String(/** @type {Error} */ (err).message) };
    }
    const store = await storeFacts(step, dir, schema, hourMs);
    rmSync(dir, { recursive: true, force: true });
    delete first.text;
    delete last.text;
    return judgeOurs(step, {
      baseBytes,
      waitS,
      t0,
      readyS,
      warmupS,
      windowS,
      runS,
      r0,
      r1,
      cpu,
      mem,
      scrapes,
      stop,
      hook,
      store,
      hourMs,
      offsetS,
    });
  } finally {
    await killPid(proc);
    rmSync(dir, { recursive: true, force: true });
    if (opts.store !== 'sqlite')
      await psql(['-c', `DROP SCHEMA IF EXISTS ${schema} CASCADE`]).catch(() => {});
  }
}

/**
 * The store's size: SQLite's file and write-ahead log, or the PostgreSQL schema's tables with their
 * indexes and TOAST. @param {string} dir @param {string} schema
 */
async function storeBytes(dir, schema) {
  if (opts.store === 'sqlite') {
    const file = join(dir, 'coalmine.db');
    let bytes = 0;
    for (const f of [file, `${file}-wal`]) if (existsSync(f)) bytes += statSync(f).size;
    return bytes;
  }
  return Number(
    await psql([
      '-c',
      `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '${schema}' AND c.relkind = 'r'`,
    ]).catch(() => 'NaN'),
  );
}

/**
 * Store size and what the rollup did, read after the agent closed it.
 * @param {Step} step @param {string} dir @param {string} schema @param {number} hourMs
 */
async function storeFacts(step, dir, schema, hourMs) {
  const closedHour = hourMs - HOUR_MS;
  const bytes = await storeBytes(dir, schema);
  if (opts.store === 'sqlite') {
    const file = join(dir, 'coalmine.db');
    /** @type {{ closedHourBlocks?: number, hourBlocks?: number, error?: string }} */
    const facts = {};
    try {
      const require = createRequire(join(ROOT, 'package.json'));
      const Database = require('better-sqlite3');
      const db = new Database(file, { readonly: true, fileMustExist: true });
      try {
        facts.closedHourBlocks = db
          .prepare('SELECT count(DISTINCT sid) AS n FROM rollup WHERE tier = 1 AND block = ?')
          .get(closedHour).n;
        facts.hourBlocks = db.prepare('SELECT count(*) AS n FROM rollup WHERE tier = 1').get().n;
      } finally {
        db.close();
      }
    } catch (err) {
      facts.error = String(/** @type {Error} */ (err).message);
    }
    return { engine: 'sqlite', bytes, ...facts };
  }
  try {
    const closedHourBlocks = Number(
      await psql([
        '-c',
        `SELECT count(DISTINCT sid) FROM ${schema}.rollup WHERE tier = 1 AND block = ${closedHour}`,
      ]),
    );
    const hourBlocks = Number(await psql(['-c', `SELECT count(*) FROM ${schema}.rollup WHERE tier = 1`]));
    return { engine: 'postgres', bytes, closedHourBlocks, hourBlocks };
  } catch (err) {
    return { engine: 'postgres', bytes, error: String(/** @type {Error} */ (err).message) };
  }
}

/**
 * Each hook gap (an event-loop block, ending at `atS` after `ms`, of which the thread waited `waitMs`
 * for a CPU) by what overlapped it: a scrape of the bench, a rollup, or neither. Counted and compared
 * by the agent's own part (ms less waitMs), so another process's load is not taken for a block.
 * @param {{ atS: number, ms: number, waitMs: number }[]} gaps
 * @param {{ startS: number, endS: number }[]} scrapes
 * @param {{ startS: number, endS: number }[]} rollups
 */
function classifyGaps(gaps, scrapes, rollups) {
  /** @param {{ atS: number, ms: number }} g @param {{ startS: number, endS: number }[]} ws */
  const overlaps = (g, ws) => ws.some((w) => g.atS - g.ms / 1e3 <= w.endS && g.atS >= w.startS);
  const by = { scrape: { n: 0, maxMs: 0 }, rollup: { n: 0, maxMs: 0 }, other: { n: 0, maxMs: 0 } };
  const all = { n: 0, maxMs: 0, raw: 0, rawMaxMs: 0 };
  /** @type {{ atS: number, ms: number, waitMs: number, ownMs: number, during: string }[]} */
  const list = [];
  for (const g of gaps) {
    const during = overlaps(g, scrapes) ? 'scrape' : overlaps(g, rollups) ? 'rollup' : 'other';
    const ownMs = Number.isFinite(g.waitMs) ? Math.max(0, g.ms - g.waitMs) : g.ms;
    list.push({ ...g, ownMs, during });
    all.raw++;
    all.rawMaxMs = Math.max(all.rawMaxMs, g.ms);
    if (ownMs <= 20) continue;
    const c = by[/** @type {'scrape' | 'rollup' | 'other'} */ (during)];
    c.n++;
    c.maxMs = Math.max(c.maxMs, ownMs);
    all.n++;
    all.maxMs = Math.max(all.maxMs, ownMs);
  }
  return { ...by, all, list };
}

/** @typedef {{ goal: string, pass: boolean, value: string }} Goal */

/**
 * Turns one step's readings into its table figures, checks and goals.
 * @param {Step} step
 * @param {any} m
 */
function judgeOurs(step, m) {
  const nominal = step.n / step.intervalS;
  const d = {
    probes: m.r1.probes - m.r0.probes,
    ok: m.r1.probesOk - m.r0.probesOk,
    overlap: m.r1.overlap - m.r0.overlap,
    stalled: m.r1.stalled - m.r0.stalled,
    lateRuns: m.r1.lateRuns - m.r0.lateRuns,
  };
  const lat = m.r1.lateness ? histDelta(m.r1.lateness, m.r0.lateness) : undefined;
  const loop = m.r1.loopDelay ? histDelta(m.r1.loopDelay, m.r0.loopDelay) : undefined;
  // Every slot that fell due in the window is a lateness event (started, or skipped as an overlap) or
  // a stalled skip; each target falls due windowS / interval times, give or take one at each edge.
  const due = step.n * (m.windowS / step.intervalS);
  const slots = (lat?.count ?? NaN) + d.stalled;
  const attempted = (lat?.count ?? NaN) - d.overlap;
  const slotsOk = Number.isFinite(slots) && Math.abs(slots - due) <= step.n + 0.01 * due;
  // Runs finish after they start: what was in flight at either edge, at most a second's worth.
  const doneOk =
    Math.abs(d.probes - attempted) <= Math.max(20, nominal * (step.timeoutMs / 1000) + 0.01 * d.probes);
  const everyTarget = m.r1.probeTargets === step.n;

  const scrapeMs = m.scrapes.map((/** @type {{ ms: number }} */ s) => s.ms);
  // m.cpu runs from before the first scrape to after the last: n scrapes for n - 1 intervals.
  const scrapeCpu = m.scrapes.reduce(
    (/** @type {number} */ a, /** @type {{ cpuS: number }} */ s) => a + s.cpuS,
    0,
  );
  const cpuAll = m.cpu - m.scrapes[m.scrapes.length - 1].cpuS;
  const cpuNoScrape = m.cpu - scrapeCpu;
  const perRun = (/** @type {number} */ c) => c / Math.max(1, d.probes);
  const scrapeMax = Math.max(...scrapeMs);
  const scrapeBytes = m.scrapes[m.scrapes.length - 1].bytes;
  const hook = m.hook ?? {};
  const rollups = /** @type {{ startS: number, endS: number, ms: number, ok: boolean }[]} */ (
    hook.rollups ?? []
  );
  // Only what happened between the first and the last scrape: start-up is not the steady state.
  const win = { startS: m.scrapes[0].startS, endS: m.scrapes[m.scrapes.length - 1].endS };
  /** @param {number} s */
  const inWindow = (s) => s >= win.startS && s <= win.endS;
  const gaps = classifyGaps(
    (hook.loop?.gaps ?? []).filter((/** @type {{ atS: number }} */ g) => inWindow(g.atS)),
    m.scrapes,
    rollups,
  );
  const startupGaps = (hook.loop?.gaps ?? []).filter(
    (/** @type {{ atS: number }} */ g) => g.atS < win.startS,
  );
  /** @type {{ atS: number, ms: number, waitMs: number, what: string }[]} */
  const longCalls = (hook.sqlite?.long ?? []).filter((/** @type {{ atS: number }} */ c) => inWindow(c.atS));
  const own = (/** @type {{ ms: number, waitMs: number }} */ c) =>
    Number.isFinite(c.waitMs) ? Math.max(0, c.ms - c.waitMs) : c.ms;
  longCalls.sort((a, b) => own(b) - own(a));
  const sqliteOwnMax = longCalls.length ? own(/** @type {any} */ (longCalls[0])) : 0;
  const sqliteOver20 = longCalls.filter((c) => own(c) > 20).length;
  // The faked (or real) wall clock of the agent at a monotonic time.
  /** @param {number} s */
  const wallAt = (s) => hook.wallAtStart + (s - hook.startMonoS) * 1000;
  const crossS = Number.isFinite(hook.wallAtStart)
    ? (m.hourMs - hook.wallAtStart) / 1000 + hook.startMonoS - m.t0
    : NaN;
  const after = rollups.filter((r) => wallAt(r.startS) >= m.hourMs);
  const crossed = after.length > 0 && after.some((r) => r.ok);
  // SQLite: the longest synchronous call (its own part, < 5 ms when none is listed). PostgreSQL's
  // client is asynchronous: the longest block during a rollup is the nearest we can say.
  const sqliteMax = hook.sqlite?.wrapped ? sqliteOwnMax : NaN;
  const storeBlockMs = m.store.engine === 'sqlite' ? sqliteMax : gaps.rollup.maxMs;
  // Results the store was given: the raw encoding is not ours to read (rows or chunks), the counter is.
  const results = m.r1.written + m.r1.queued;
  const bytesPerRow = results > 0 ? (m.store.bytes - m.baseBytes) / results : NaN;
  // A target-hour holds 3600 / interval results.
  const bytesPerTargetHour = (bytesPerRow * 3600) / step.intervalS;
  const p99ok = lat ? countAbove(lat, 0.01) <= 0.01 * lat.count : false;
  const loopOver20 = hook.loop ? gaps.all.n : NaN;

  /** @type {Goal[]} */
  const goals = [
    {
      goal: 'store block < 20 ms',
      pass: storeBlockMs < 20,
      value: msText(storeBlockMs),
    },
  ];
  if (step.kind === 'tcp' && step.n === 10_000) {
    goals.push(
      { goal: 'scrape < 300 ms at 10k', pass: scrapeMax < 300, value: `max ${msText(scrapeMax)}` },
      {
        goal: 'lateness p99 < 10 ms at 10k',
        pass: p99ok,
        value: bucketText(lat && quantileBucket(lat, 0.99)),
      },
      {
        goal: 'no loop block > 20 ms at 10k (item 4)',
        pass: loopOver20 === 0,
        value: `${loopOver20} blocks, max ${msText(gaps.all.maxMs)}`,
      },
    );
  }
  const checks = [
    {
      check: 'every due slot run or counted skipped',
      pass: slotsOk,
      value: `${Math.round(slots)} of ${Math.round(due)} due`,
    },
    { check: 'every started run finished', pass: doneOk, value: `${d.probes} done of ${attempted} started` },
    { check: 'every target ran', pass: everyTarget, value: `${m.r1.probeTargets} of ${step.n} targets` },
    ...(opts.faketime || opts.seconds >= 3600
      ? [
          {
            check: 'a rollup ran after the hour boundary',
            pass: crossed,
            value: `${after.length} rollups after it`,
          },
        ]
      : []),
    {
      check: 'store kept every result',
      pass: m.r1.dropped === 0 && m.r1.writeErrors === 0,
      value: `${m.r1.dropped} dropped, ${m.r1.writeErrors} write errors`,
    },
  ];
  const pass = checks.every((c) => c.pass) && goals.every((g) => g.pass);
  const p50 = lat && quantileBucket(lat, 0.5);
  const p99 = lat && quantileBucket(lat, 0.99);
  const max = lat && maxBucket(lat);
  const finished = rollups.filter((r) => Number.isFinite(r.ms));
  const rollupMax = finished.length ? Math.max(...finished.map((r) => r.ms)) : NaN;
  const notes = [
    `window ${m.windowS.toFixed(1)} s after a ${m.warmupS.toFixed(0)} s warm-up (agent ready after ${m.readyS.toFixed(1)} s); ${d.probes} runs, ${d.ok} ok (${((100 * d.ok) / Math.max(1, d.probes)).toFixed(2)}%); its main thread waited for a CPU ${((100 * m.waitS) / m.windowS).toFixed(1)}% of the window (other processes' load); CPU ${((100 * cpuAll) / m.windowS).toFixed(0)}% of a core, ${fmtSeconds(perRun(cpuAll))} per run with scrapes and store, ${fmtSeconds(perRun(cpuNoScrape))} without the scrapes (${fmtSeconds(scrapeCpu / m.scrapes.length)} of agent CPU a scrape)`,
    `lateness from coalmine_scheduler_lateness_seconds (bucket bounds): p50 ${bucketText(p50)}, p99 ${bucketText(p99)}, max ${bucketText(max)}; ${lat ? countAbove(lat, 0.01) : 'n/a'} starts >10 ms late, ${d.lateRuns} >=100 ms (coalmine_scheduler_late_runs_total)`,
    `event loop (hook, 10 ms timer, in the window, the agent's own part of each gap: less the time its thread waited for a CPU): ${gaps.all.n} blocks >20 ms, max ${msText(gaps.all.maxMs)} (as measured, wait included: ${gaps.all.raw} gaps >20 ms, max ${msText(gaps.all.rawMaxMs)}); ${startupGaps.length} gaps >20 ms during start-up and warm-up; during scrapes ${gaps.scrape.n} (max ${msText(gaps.scrape.maxMs)}), during rollups ${gaps.rollup.n} (max ${msText(gaps.rollup.maxMs)}), other ${gaps.other.n} (max ${msText(gaps.other.maxMs)}); agent's own coalmine_agent_event_loop_delay_seconds: ${loop ? countAbove(loop, 0.02) : 'n/a'} samples >20 ms, max ${bucketText(loop && maxBucket(loop))}`,
    hook.sqlite?.wrapped
      ? `SQLite synchronous calls (hook, whole run): ${hook.sqlite.calls}, ${hook.sqlite.totalMs.toFixed(0)} ms in all, longest ${msText(hook.sqlite.maxMs)}; in the window ${longCalls.length} over 5 ms, ${sqliteOver20} over 20 ms of their own; longest: ${longCalls
          .slice(0, 3)
          .map(
            (t) =>
              `${t.what} ${msText(t.ms)} (${msText(t.waitMs)} waiting for a CPU) at t=${(t.atS - m.t0).toFixed(0)} s`,
          )
          .join(', ')}`
      : `SQLite calls not timed: ${hook.sqlite?.why || hook.error || 'no hook data'}`,
    `rollups (hook): ${rollups.length}, longest ${msText(rollupMax)}: ${rollups.map((r) => `t=${(r.startS - m.t0).toFixed(0)} s ${Number.isFinite(r.ms) ? msText(r.ms) : 'still running at the stop'}`).join(', ')}`,
    opts.faketime
      ? `clock: the agent ran under libfaketime (FAKETIME=+${m.offsetS} s, monotonic clock real), its wall clock crossed ${clockText(m.hourMs)} at t=${crossS.toFixed(0)} s; the rollup after it closed the ${clockText(m.hourMs - HOUR_MS)} hour block for ${m.store.closedHourBlocks ?? 'n/a'} of ${step.n} series (${m.store.hourBlocks ?? 'n/a'} hour blocks in all). The shortened mode crosses the boundary, not a full hour of rows: minute 59's rollup cost needs --full`
      : `clock: real; hour ${clockText(m.hourMs)} at t=${crossS.toFixed(0)} s; ${m.store.closedHourBlocks ?? 'n/a'} of ${step.n} series have the hour block before it`,
    `store: ${m.store.engine}, ${bytesShort(m.store.bytes)} after the stop, ${bytesShort(m.baseBytes)} when the agent was ready; the difference for ${results} results (coalmine_store_written_total + _queued at the last scrape, ${m.runS.toFixed(0)} s): ${bytesShort(bytesPerRow)} a result, indexes and rollups included, x ${(3600 / step.intervalS).toFixed(0)} results a target-hour${m.store.error ? `; ${m.store.error}` : ''}`,
    `scrapes: ${m.scrapes.length}, ${scrapeMs.map((/** @type {number} */ x) => x.toFixed(0)).join(' / ')} ms, last ${bytesShort(scrapeBytes)}; stop took ${m.stop.seconds.toFixed(1)} s${m.stop.clean ? '' : ' (killed)'}`,
    ...checks.filter((c) => !c.pass).map((c) => `FAIL check: ${c.check}: ${c.value}`),
    ...goals.filter((g) => !g.pass).map((g) => `FAIL goal: ${g.goal}: ${g.value}`),
  ];
  return {
    step: step.name,
    pass,
    cells: {
      rate: `${(d.probes / m.windowS).toFixed(0)}/s of ${nominal.toFixed(0)}`,
      done: `${Math.round(slots)}/${Math.round(due)}`,
      lateness: `${bucketText(p50)} / ${bucketText(p99)} / ${bucketText(max)}`,
      skipped: `${d.overlap} / ${d.stalled}`,
      loop: `${loopOver20} (max ${msText(gaps.all.maxMs)})`,
      // Nothing listed: no SQLite call over 5 ms, or (PostgreSQL) no block over 20 ms during a rollup.
      store:
        storeBlockMs > 0
          ? msText(storeBlockMs)
          : m.store.engine === 'sqlite'
            ? hook.sqlite?.wrapped
              ? '<5 ms'
              : 'n/a'
            : 'none >20 ms',
      rss: mb(m.mem.max),
      scrape: `${msText(median(scrapeMs))} / ${msText(scrapeMax)}, ${bytesShort(scrapeBytes)}`,
      perTargetHour: bytesShort(bytesPerTargetHour),
      wait: `${((100 * m.waitS) / m.windowS).toFixed(1)}%`,
    },
    goals,
    checks,
    notes,
    cpuPerProbe: perRun(cpuAll),
    cpuShare: cpuAll / m.windowS,
    probesPerS: d.probes / m.windowS,
    nominal,
    skippedAll: d.overlap + d.stalled,
    p99: p99 ? bucketText(p99) : 'n/a',
    cpuPerProbeNoScrape: perRun(cpuNoScrape),
    rssMax: m.mem.max,
    data: {
      ...m,
      d,
      nominal,
      due,
      slots,
      attempted,
      bytesPerTargetHour,
      bytesPerRow,
      crossS,
      gaps: {
        ...gaps,
        list: gaps.list.slice(0, 1000).map((g) => ({
          t: +(g.atS - m.t0).toFixed(3),
          ms: +g.ms.toFixed(1),
          waitMs: +g.waitMs.toFixed(1),
          during: g.during,
        })),
      },
      sqliteLong: longCalls.slice(0, 50).map((c) => ({ ...c, t: +(c.atS - m.t0).toFixed(3) })),
      hook: { ...hook, loop: { ...hook.loop, gaps: undefined }, sqlite: { ...hook.sqlite, long: undefined } },
    },
  };
}

// ---------------------------------------------------------------- the peer, one step

/** @param {Step} step @param {import('./lib/blackbox.mjs').Blackbox} bb */
async function runPeer(step, bb) {
  const rate = step.n / step.intervalS;
  // As many as Prometheus could have outstanding at this rate with this timeout, and at least 256.
  const maxInFlight = Math.max(256, Math.ceil(rate * (step.timeoutMs / 1000)) + 64);
  log(
    `${step.name}: blackbox_exporter driven at ${rate.toFixed(0)} probes/s for ${opts.peerSeconds} s (core 0; driver on core 1)`,
  );
  const cpu0 = procCpuSeconds(bb.pid);
  const rss = rssSampler(bb.pid);
  const r = await runChild(
    'blackbox-rate',
    {
      base: bb.base,
      module: step.kind === 'tcp' ? 'tcp_connect' : 'http_2xx',
      // The distinct addresses: the exporter keeps nothing per target, and 20,000 copies of 8 TCP
      // addresses would not fit in the child's argv.
      targets: [...new Set(step.targets)],
      rate,
      seconds: opts.peerSeconds,
      maxInFlight,
      timeoutS: step.timeoutMs / 1000,
    },
    // The driver shares core 1 with the target servers: on a loaded machine it finishes late.
    { cpu: 1, script: SCALE_CHILD, timeoutMs: (opts.peerSeconds + 240) * 1000 },
  );
  const mem = rss();
  const cpu = procCpuSeconds(bb.pid) - cpu0;
  const accounted = r.sent + r.held === r.due && r.ok + r.failed === r.sent;
  return {
    rate,
    maxInFlight,
    ...r,
    accounted,
    cpu,
    cpuPerProbe: cpu / Math.max(1, r.sent),
    rssMax: mem.max,
    rssMedian: mem.median,
  };
}

// ---------------------------------------------------------------- build, run, report

async function build() {
  if (!opts.build) return 'skipped (--no-build)';
  log('building dist/ (npm run build)');
  try {
    await run('npm', ['run', 'build', '--silent'], { cwd: ROOT, maxBuffer: 16 << 20 });
    return 'ok';
  } catch (err) {
    const out = String(/** @type {{ stdout?: string }} */ (err).stdout ?? '');
    const errors = out.split('\n').filter((l) => /error TS\d+/.test(l));
    log(`build reported ${errors.length} type errors; running what tsc emitted`);
    return `type errors (${errors.length}); ran on what tsc emitted`;
  }
}

/** @param {string} s @param {number} w */
const pad = (s, w) => (s.length >= w ? s : s + ' '.repeat(w - s.length));
/** @param {string[]} head @param {string[][]} body */
function table(head, body) {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const fmt = (/** @type {string[]} */ cells) =>
    cells
      .map((c, i) => pad(c, widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [fmt(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(fmt)].join('\n');
}

/**
 * --workers: each TCP step's settings side by side, each against the step's first setting (normally
 * 0, workers off) and against blackbox_exporter at the same rate. @param {any[]} results
 */
function workersTable(results) {
  /** @type {Map<string, any[]>} */
  const byStep = new Map();
  for (const r of results) if (r.workers !== null) byStep.set(r.base, [...(byStep.get(r.base) ?? []), r]);
  /** @type {string[][]} */
  const rows = [];
  for (const [, rs] of byStep) {
    const first = rs[0]?.ours;
    for (const r of rs) {
      const o = r.ours;
      if (!o) {
        rows.push([r.step, 'ERROR', '', '', '', '', '', '', '', '']);
        continue;
      }
      rows.push([
        r.step,
        `${o.probesPerS.toFixed(0)} of ${o.nominal.toFixed(0)} (${((100 * o.probesPerS) / o.nominal).toFixed(1)}%)`,
        String(o.skippedAll),
        o.p99,
        `${(100 * o.cpuShare).toFixed(0)}%`,
        fmtSeconds(o.cpuPerProbe),
        mb(o.rssMax),
        first && o !== first
          ? `${fmtRatio(o.probesPerS / first.probesPerS)} / ${fmtRatio(o.cpuPerProbe / first.cpuPerProbe)} / ${fmtRatio(o.rssMax / first.rssMax)}`
          : '(base)',
        r.peer ? `${fmtSeconds(r.peer.cpuPerProbe)}, ${mb(r.peer.rssMax)}` : 'n/a',
        r.peer
          ? `${fmtRatio(o.cpuPerProbe / r.peer.cpuPerProbe)} / ${fmtRatio(o.rssMax / r.peer.rssMax)}`
          : 'n/a',
      ]);
    }
  }
  return [
    'probes.workers side by side (the agent on every core in each run; the same step, one after the other):',
    '',
    table(
      [
        'Step',
        'Probes/s of nominal',
        'Skipped',
        'Lateness p99',
        'CPU (of a core)',
        'CPU/probe',
        'RSS max',
        'vs first: probes/s / CPU/probe / RSS',
        'blackbox CPU/probe, RSS',
        'vs blackbox: CPU/probe / RSS',
      ],
      rows,
    ),
  ].join('\n');
}

async function main() {
  const started = new Date();
  const loadStart = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  if (TASKSET && CPUS >= 2)
    await run(TASKSET, ['-a', '-p', '-c', '1', String(process.pid)]).catch(() => undefined);
  const buildStatus = await build();
  const servers = await startTargets();
  const bb = await startBlackbox(tmp, { name: 'blackbox', cpu: 0, gomaxprocs: 1 });
  /** @type {Step[]} */
  const steps = opts.tcpSteps.map((n) => ({
    name: `tcp-${n}`,
    kind: 'tcp',
    n,
    intervalS: opts.tcpIntervalS,
    timeoutMs: Math.min(5000, opts.tcpIntervalS * 900),
    targets: Array.from(
      { length: n },
      (_, i) => `127.0.0.1:${servers.tcpPorts[i % servers.tcpPorts.length]}`,
    ),
  }));
  if (opts.http > 0)
    steps.push({
      name: `http-${opts.http}`,
      kind: 'http',
      n: opts.http,
      intervalS: opts.httpIntervalS,
      timeoutMs: Math.round(opts.httpIntervalS * 900),
      targets: Array.from({ length: opts.http }, (_, i) => `http://127.0.0.1:${servers.httpPort}/t/${i}`),
    });
  /** @type {any[]} */
  const results = [];
  let runIndex = 0;
  for (const step of steps) {
    // With --workers, a TCP step runs once per setting (in the order given), then the peer once.
    const variants = step.kind === 'tcp' && opts.workers ? opts.workers : [undefined];
    /** @type {any[]} */
    const stepResults = [];
    for (const workers of variants) {
      const ourStep =
        workers === undefined ? step : { ...step, name: `${step.name} workers=${workers}`, workers };
      /** @type {any} */
      const res = {
        step: ourStep.name,
        base: step.name,
        workers: workers ?? null,
        n: step.n,
        kind: step.kind,
        intervalS: step.intervalS,
      };
      try {
        res.ours = await runOurs(ourStep, runIndex++);
      } catch (err) {
        res.oursError = String(/** @type {Error} */ (err)?.stack ?? err);
        log(`${ourStep.name}: ours failed: ${res.oursError}`);
      }
      stepResults.push(res);
    }
    /** @type {any} */
    let peer;
    /** @type {string | undefined} */
    let peerError;
    try {
      peer = await runPeer(step, bb);
    } catch (err) {
      peerError = String(/** @type {Error} */ (err)?.message ?? err);
      log(`${step.name}: peer failed: ${peerError}`);
    }
    for (const res of stepResults) results.push({ ...res, peer, ...(peerError ? { peerError } : {}) });
  }
  await bb.stop();
  await killAll();

  const out = [];
  out.push(
    `coalmine run at scale: TCP targets every ${opts.tcpIntervalS} s, HTTP every ${opts.httpIntervalS} s; ${opts.seconds} s a step, ${opts.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'} store; ${opts.faketime ? `shortened mode: the agent's wall clock is shifted by libfaketime to cross an hour ${opts.crossAtS} s into each step` : 'real clock'}${opts.workers ? `; --workers ${opts.workers.join(',')}: the agent on every core (target servers and the bench on core 1 with it)` : ''}; load average ${loadStart} at the start, ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} at the end (${CPUS} CPUs)`,
    '',
    table(
      [
        'Step',
        'Probes/s (nominal)',
        'Slots/due',
        'Lateness p50 / p99 / max',
        'Skipped ovl/stl',
        'Loop >20ms',
        'Store block',
        'RSS max',
        'Scrape p50 / max, size',
        'Store/target-h',
        'CPU wait',
        'Result',
      ],
      results.map((r) =>
        r.ours
          ? [
              r.step,
              r.ours.cells.rate,
              r.ours.cells.done,
              r.ours.cells.lateness,
              r.ours.cells.skipped,
              r.ours.cells.loop,
              r.ours.cells.store,
              r.ours.cells.rss,
              r.ours.cells.scrape,
              r.ours.cells.perTargetHour,
              r.ours.cells.wait,
              r.ours.pass ? 'PASS' : 'FAIL',
            ]
          : [r.step, 'ERROR', '', '', '', '', '', '', '', '', '', 'ERROR'],
      ),
    ),
    '',
    'Against blackbox_exporter (GOMAXPROCS=1, core 0, /probe driven open-loop at the same probes/s):',
    '',
    table(
      [
        'Step',
        'CPU/probe ours (w/o scrapes)',
        'blackbox',
        'Ratio (w/o)',
        'RSS max ours',
        'blackbox',
        'Ratio',
        'Peer sent/due (held), ok',
      ],
      results.map((r) => [
        r.step,
        r.ours ? `${fmtSeconds(r.ours.cpuPerProbe)} (${fmtSeconds(r.ours.cpuPerProbeNoScrape)})` : 'n/a',
        r.peer ? fmtSeconds(r.peer.cpuPerProbe) : 'n/a',
        r.ours && r.peer
          ? `${fmtRatio(r.ours.cpuPerProbe / r.peer.cpuPerProbe)} (${fmtRatio(r.ours.cpuPerProbeNoScrape / r.peer.cpuPerProbe)})`
          : 'n/a',
        r.ours ? mb(r.ours.rssMax) : 'n/a',
        r.peer ? mb(r.peer.rssMax) : 'n/a',
        r.ours && r.peer ? fmtRatio(r.ours.rssMax / r.peer.rssMax) : 'n/a',
        r.peer
          ? `${r.peer.sent}/${r.peer.due} (${r.peer.held}), ${r.peer.ok}${r.peer.accounted ? '' : ' UNACCOUNTED'}`
          : `ERROR ${r.peerError ?? ''}`,
      ]),
    ),
    '',
  );
  if (opts.workers) out.push(workersTable(results), '');
  for (const r of results) {
    out.push(`${r.ours?.pass ? 'PASS' : 'FAIL'} ${r.step}`);
    if (r.oursError) out.push(`    ERROR ours: ${r.oursError.split('\n')[0]}`);
    for (const n of r.ours?.notes ?? []) out.push(`    ${n}`);
    if (r.peer)
      out.push(
        `    peer: ${r.peer.sent} /probe sent of ${r.peer.due} due (${r.peer.held} held at ${r.peer.maxInFlight} in flight) in ${r.peer.seconds.toFixed(1)} s, ${r.peer.ok} ok, ${r.peer.failed} failed${r.peer.firstError ? ` (${r.peer.firstError.slice(0, 120)})` : ''}; exporter CPU ${((100 * r.peer.cpu) / r.peer.seconds).toFixed(0)}% of a core (the driver on core 1: ${((100 * r.peer.cpuSeconds) / r.peer.seconds).toFixed(0)}%), RSS median ${mb(r.peer.rssMedian)}`,
      );
  }
  process.stdout.write(out.join('\n') + '\n');

  const outDir = join(ROOT, 'bench/out');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `scale-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  const report = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    host: {
      cpus: CPUS,
      cpuModel: cpus()[0]?.model,
      node: process.version,
      taskset: TASKSET ?? null,
      blackbox: blackboxVersion(),
      faketime: opts.faketime ? FAKETIME_LIB : null,
      load: readFileSync('/proc/loadavg', 'utf8').trim(),
    },
    options: opts,
    build: buildStatus,
    results,
  };
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  log(`wrote ${file}`);
}

await runBench(main, tmp);
