// @ts-check
/**
 * GET /api/v1/targets with 1,000 and 10,000 targets and GET /api/v1/flows with 100 and 1,000 flows,
 * over HTTP, side by side in one run: ours (the real /api/v1 handlers: the store's probeOverview, which
 * answers the last hour from memory, and flowOverview, one read for every flow) against the per-target
 * and per-flow paths they replaced (probeWindow + probeSeries for each target, flowWindow + flowSeries
 * for each flow, 16 at a time, as the router did), on SQLite and PostgreSQL. See bench/README.md
 * ("overview.mjs").
 *
 *   npm run build && node bench/overview.mjs [--quick] [--only sqlite,postgres] [--sizes 1000,10000]
 *     [--flows 100,1000] [--no-build] [--pg URL] [--profile DIR]   (--sizes 0 or --flows 0: leave that
 *     part out; --profile: a .cpuprofile of the server's thread during each of ours' calls, in DIR)
 *
 * Each size fills a fresh store with the last hour of its targets through the BatchedWriter (1,000
 * targets every 1 s, 10,000 every 10 s: 3.6 M runs either way; --quick: every 10 s and 100 s), rolls it
 * up, and writes 30 s more after the rollup. Then, for each of ROUNDS rounds as the dashboard's reload
 * meets them (10 s more written, a rollup, then the call): ours, and the peer on the same data at the
 * same clock. Checked: both list every target, and agree on every target's runs (exactly) and p50/p95
 * (within 0.1 %). The client runs in a worker thread (bench/lib/overview-client.mjs), so reading and
 * parsing the answer is not counted as the server's event-loop block. Progress on stderr, a table on stdout, JSON in bench/out/overview-<timestamp>.json.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Session } from 'node:inspector/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { log } from './lib/procs.mjs';
import { fmtRatio, median } from './lib/stats.mjs';
import { flag, value } from './lib/args.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
if (flag('help')) {
  process.stdout.write(
    'usage: node bench/overview.mjs [--quick] [--only sqlite,postgres] [--sizes 1000,10000] [--flows 100,1000] [--no-build] [--pg URL]\n',
  );
  process.exit(0);
}
const quick = flag('quick');
const only = (value('only') ?? 'sqlite,postgres').split(',');
const SIZES = (value('sizes') ?? '1000,10000')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const FLOW_SIZES = (value('flows') ?? '100,1000')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
/** A flow's sampling interval (the agent's FlowSampler default). */
const FLOW_EVERY_MS = 10_000;
const PG_URL = value('pg') ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Probe interval (ms) of each size: 3.6 M runs an hour either way (a tenth with --quick). */
const everyMs = (/** @type {number} */ n) => n * (quick ? 10 : 1);
const ROUNDS = quick ? 2 : 3;
const MINUTE = 60_000;
const HOUR = 3_600_000;
const TOKEN = 'bench-overview-token-0123456789';
/** Goals (issue 11 item 5): whole call, by size. */
const GOAL_MS = { 1000: 50, 10000: 300 };
const PROFILE_DIR = value('profile');

if (!flag('no-build')) {
  log('npm run build');
  await promisify(execFile)('npm', ['run', 'build', '--silent'], { cwd: ROOT }).catch((err) =>
    log(
      `build reported errors (carrying on with what tsc emitted): ${String(err.stdout ?? err).split('\n')[0]}`,
    ),
  );
}
const dist = new URL('../dist/', import.meta.url);
const { openStore } = await import(new URL('store/open.js', dist).href);
const { BatchedWriter } = await import(new URL('store/writer.js', dist).href);
// The fastify rewrite's entry point when it is built, else the router it replaces.
const { createApiV1 } = await import(new URL('api/v1/api.js', dist).href).catch(
  () => import(new URL('api/v1/router.js', dist).href),
);
// The fastify app as a request listener; before it, the router was one.
const { requestListener } = await import(new URL('api/server.js', dist).href)
  .then(
    (m) => (m.requestListener ? m : { requestListener: undefined }),
    () => ({ requestListener: undefined }),
  )
  .then((m) => ({
    requestListener:
      m.requestListener ??
      (async ({ api }) => ({
        handle: (req, res) =>
          void api(req, res).then((handled) => {
            if (!handled) {
              res.writeHead(404);
              res.end();
            }
          }),
        close: async () => api.close(),
      })),
  }));
// The summaries as objects, which the handler stringified whole before it wrote their JSON by hand.
const { targetSummary } = await import(new URL('api/v1/routes/targets.js', dist).href);
const { LatencyHistogram } = await import(new URL('stats/histogram.js', dist).href);
const { resolveAuth } = await import(new URL('api/auth.js', dist).href);
const { apiConfigSchema } = await import(new URL('api/v1/config.js', dist).href);

/** A small deterministic generator (mulberry32). @param {number} seed */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(11);

/**
 * Every target's runs with from <= time < to, through the writer as the agent's probes push them; resolves
 * when all are written. Durations 0.5-20 ms (each run in a histogram bucket of its own, close to the worst
 * case for the rollups), 2 % failures.
 * @param {any} store @param {number} n @param {number} every @param {number} from @param {number} to
 */
async function write(store, n, every, from, to) {
  const w = new BatchedWriter(store, { batchSize: 5000, flushIntervalMs: 1000, maxQueue: 200_000 });
  let pushed = 0;
  for (let slot = Math.ceil(from / every) * every; slot < to; slot += every) {
    for (let i = 0; i < n; i++) {
      // Targets spread over the interval, as the scheduler staggers them.
      const time = slot + Math.floor((i / n) * every);
      if (time >= to) continue;
      const ok = random() > 0.02;
      w.pushProbe({
        time,
        name: `t${i}`,
        kind: 'http',
        target: `http://10.0.${i >> 8}.${i & 255}/`,
        ok,
        durationSeconds: 0.0005 * Math.exp(random() * 3.7),
        phases: { connect: 0.0002, processing: 0.0003 },
        ...(ok ? {} : { errorCode: 'timeout', errorMessage: 'no answer in 900 ms' }),
      });
      pushed++;
    }
    while (w.stats().queued > 150_000) await new Promise((r) => setTimeout(r, 1));
    if (pushed % 50_000 < n) await new Promise((r) => setImmediate(r));
  }
  while (w.stats().queued > 0) await new Promise((r) => setTimeout(r, 2));
  const stats = await w.close();
  if (stats.dropped > 0 || stats.written !== pushed)
    throw new Error(`the writer wrote ${stats.written} of ${pushed} runs (${stats.dropped} dropped)`);
  return pushed;
}

/**
 * Every flow's 10 s intervals with from <= time < to, through the writer as the agent's FlowSampler pushes
 * them: 20 pings an interval with latencies 0.2-6 ms, about one interval in five losing one to three.
 * @param {any} store @param {any[]} flows @param {number} from @param {number} to
 */
async function writeFlowIntervals(store, flows, from, to) {
  const w = new BatchedWriter(store, { batchSize: 5000, flushIntervalMs: 1000, maxQueue: 200_000 });
  let pushed = 0;
  for (let slot = Math.ceil(from / FLOW_EVERY_MS) * FLOW_EVERY_MS; slot < to; slot += FLOW_EVERY_MS) {
    for (const [i, f] of flows.entries()) {
      const time = slot + Math.floor((i / flows.length) * FLOW_EVERY_MS);
      if (time >= to) continue;
      const h = new LatencyHistogram();
      for (let k = 0; k < 20; k++) h.record(Math.round(2e5 * Math.exp(random() * 3.4)));
      w.pushFlow({
        time,
        intervalMs: FLOW_EVERY_MS,
        canary: f.canary,
        coalminer: f.coalminer,
        transport: f.transport,
        region: f.region,
        runId: 'bench',
        received: 20,
        lost: random() < 0.2 ? 1 + Math.floor(random() * 3) : 0,
        duplicated: 0,
        reordered: 0,
        late: 0,
        sendFailed: 0,
        inFlight: Math.floor(random() * 3),
        droppedLocally: 0,
        latency: h.toJSON(),
      });
      pushed++;
    }
    while (w.stats().queued > 150_000) await new Promise((r) => setTimeout(r, 1));
    if (pushed % 20_000 < flows.length) await new Promise((r) => setImmediate(r));
  }
  while (w.stats().queued > 0) await new Promise((r) => setTimeout(r, 2));
  const stats = await w.close();
  if (stats.dropped > 0 || stats.written !== pushed)
    throw new Error(
      `the writer wrote ${stats.written} of ${pushed} flow intervals (${stats.dropped} dropped)`,
    );
  return pushed;
}

/** Flows as the agent's context lists them: ten canaries, each to n / 10 coalminers. @param {number} n */
const flowList = (n) =>
  Array.from({ length: n }, (_, i) => ({
    canary: `canary-${i % 10}`,
    coalminer: `miner-${Math.floor(i / 10)}`,
    transport: 'redis',
    region: `region-${Math.floor(i / 10) % 7}`,
    status: 'up',
    counts: { received: 0, lost: 0, duplicated: 0, reordered: 0, late: 0, sendFailed: 0 },
  }));

/** The per-flow path as src/api/v1/router.ts had it before flowOverview (its store part). */
async function perFlowSummaries(store, flows, now) {
  const to = Math.floor(now / MINUTE) * MINUTE + MINUTE;
  const from = to - HOUR;
  const out = new Array(flows.length);
  let next = 0;
  const worker = async () => {
    while (next < flows.length) {
      const i = next++;
      const f = flows[i];
      const [w, s] = await Promise.all([
        store.flowWindow(f.canary, f.coalminer, from, to),
        store.flowSeries(f.canary, f.coalminer, from, to, MINUTE),
      ]);
      out[i] = {
        canary: f.canary,
        coalminer: f.coalminer,
        window: { p50: w.p50, p95: w.p95, p99: w.p99, lossRatio: w.lossRatio, received: w.received },
        sparkline: s.points.map((p) => [p.time, p.p50, p.failures]),
      };
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, flows.length) }, worker));
  return out;
}

/** @param {number} n */
const targetList = (n) =>
  Array.from({ length: n }, (_, i) => ({
    name: `t${i}`,
    kind: 'http',
    target: `http://10.0.${i >> 8}.${i & 255}/`,
    intervalSeconds: 1,
  }));

/** The per-target path as src/api/v1/router.ts had it before probeOverview (its store part). */
async function perTargetSummaries(store, targets, now) {
  const to = Math.floor(now / MINUTE) * MINUTE + MINUTE;
  const from = to - HOUR;
  const out = new Array(targets.length);
  let next = 0;
  const worker = async () => {
    while (next < targets.length) {
      const i = next++;
      const t = targets[i];
      const [w, s] = await Promise.all([
        store.probeWindow(t.name, from, to),
        store.probeSeries(t.name, from, to, MINUTE),
      ]);
      out[i] = {
        name: t.name,
        window: { p50: w.p50, p95: w.p95, successRatio: w.successRatio, runs: w.runs },
        sparkline: s.points.map((p) => [p.time, p.p50, p.failures]),
      };
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, targets.length) }, worker));
  return out;
}

/**
 * Ours (the real /api/v1 handler) at /api/v1/targets and the peer at /peer/targets, on one loopback
 * server, both at the clock `clock.now`.
 */
async function serve(store, targets, clock, flows = []) {
  const ctx = {
    version: 'bench',
    targets: () => targets,
    flows: () => flows,
    check: async () => [],
    events: { subscribe: () => () => undefined },
    store,
    status: () => ({}),
  };
  const { auth } = resolveAuth(
    apiConfigSchema.parse({ tokens: [{ name: 'bench', token: TOKEN, scopes: ['read'] }] }),
    {},
  );
  const api = createApiV1(ctx, auth, { now: () => clock.now, rateLimit: false });
  const app = await requestListener({ api });
  const server = createServer((req, res) => {
    if (req.url === '/old/targets') {
      const to = Math.floor(clock.now / MINUTE) * MINUTE + MINUTE;
      store
        .probeOverview(
          targets.map((t) => t.name),
          to - HOUR,
          to,
        )
        .then(
          (/** @type {any[]} */ overview) => {
            const body = JSON.stringify({ targets: targets.map((t, i) => targetSummary(t, overview[i])) });
            res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
            res.end(body);
          },
          (/** @type {unknown} */ err) => {
            res.writeHead(500);
            res.end(String(err));
          },
        );
      return;
    }
    if (req.url === '/peer/targets' || req.url === '/peer/flows') {
      const flowsAsked = req.url === '/peer/flows';
      (flowsAsked
        ? perFlowSummaries(store, flows, clock.now)
        : perTargetSummaries(store, targets, clock.now)
      ).then(
        (body) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(flowsAsked ? { flows: body } : { targets: body }));
        },
        (err) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
      return;
    }
    app.handle(req, res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', () => r(undefined)));
  const addr = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    origin: `http://127.0.0.1:${addr.port}`,
    close: () => {
      void app.close();
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r(undefined)));
    },
  };
}

const client = new Worker(new URL('./lib/overview-client.mjs', import.meta.url));
let asked = 0;
/** @param {object} m @returns {Promise<any>} */
function ask(m) {
  const id = ++asked;
  return new Promise((resolve, reject) => {
    const on = (/** @type {any} */ r) => {
      if (r.id !== id) return;
      client.off('message', on);
      if (r.error) reject(new Error(`${r.status}: ${r.error}`));
      else resolve(r);
    };
    client.on('message', on);
    client.postMessage({ id, ...m });
  });
}

/**
 * One GET by the client thread, timed there until its last byte, with the longest event-loop block of
 * this thread (the server's) while it ran. `keep` has the client keep the answer for compare().
 * @param {string} url @param {'ours' | 'peer' | null} keep
 */
async function timedGet(url, keep, keepText = null) {
  const profiling = PROFILE_DIR !== undefined && url.includes('/api/v1/') ? await startProfile() : undefined;
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const { ms } = await ask({
    url,
    token: TOKEN,
    keep,
    keepText,
    list: url.endsWith('/flows') ? 'flows' : 'targets',
  });
  // One more timer turn, so a block at the very end is seen too.
  await new Promise((r) => setTimeout(r, 5));
  h.disable();
  await profiling?.(url);
  return { ms, blockMs: h.max / 1e6 };
}

let profiled = 0;
/** Starts the server thread's CPU profiler; the function it gives stops it and writes the profile. */
async function startProfile() {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return async (/** @type {string} */ url) => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    mkdirSync(/** @type {string} */ (PROFILE_DIR), { recursive: true });
    const file = join(
      /** @type {string} */ (PROFILE_DIR),
      `ours-${++profiled}-${url.split('/').pop()}.cpuprofile`,
    );
    writeFileSync(file, JSON.stringify(profile));
  };
}

async function freshStore(engine) {
  if (engine === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'coalmine-overview-'));
    const store = await openStore(`sqlite:${join(dir, 'coalmine.db')}`);
    return { store, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const schema = `coalmine_bench_overview_${process.pid}_${Math.floor(random() * 1e9)}`;
  const store = await openStore(`${PG_URL}?schema=${schema}`);
  return {
    store,
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    },
  };
}

const results = [];
const flowResults = [];
for (const engine of only) {
  for (const n of SIZES) {
    const every = everyMs(n);
    log(`${engine}, ${n} targets every ${every / 1000} s: filling the last hour through the writer`);
    const { store, drop } = await freshStore(engine);
    try {
      let now = Date.now();
      const t0 = performance.now();
      let written = await write(store, n, every, now - HOUR - MINUTE, now - 30_000);
      log(`  ${written} runs in ${((performance.now() - t0) / 1000).toFixed(1)} s; rolling up`);
      await store.rollup(Date.now());
      written += await write(store, n, every, now - 30_000, now);
      const targets = targetList(n);
      const clock = { now };
      const server = await serve(store, targets, clock);
      try {
        const first = await timedGet(`${server.origin}/api/v1/targets`, null);
        log(`  ours, first call: ${first.ms.toFixed(0)} ms`);
        const rounds = [];
        for (let r = 0; r < ROUNDS; r++) {
          // What a dashboard reload meets: runs written since, and a rollup that rewrote every target's
          // current hour block.
          const later = Date.now();
          written += await write(store, n, every, now, later);
          await store.rollup(later);
          written += await write(store, n, every, later, later + 10_000);
          now = later + 10_000;
          clock.now = now;
          const ours = await timedGet(`${server.origin}/api/v1/targets`, 'ours');
          // The store's part alone, on this thread, at the range the handler asks for.
          const to = Math.floor(now / MINUTE) * MINUTE + MINUTE;
          const s0 = performance.now();
          await store.probeOverview(
            targets.map((t) => t.name),
            to - HOUR,
            to,
          );
          const storeMs = performance.now() - s0;
          const oursAgain = await timedGet(`${server.origin}/api/v1/targets`, null, 'ours');
          // The same answer the way the handler wrote it before: the summaries as objects, one JSON.stringify.
          const old = await timedGet(`${server.origin}/old/targets`, null, 'old');
          const { differ } = await ask({ compareText: true });
          const peer = await timedGet(`${server.origin}/peer/targets`, 'peer');
          const compared = await ask({ compare: n });
          const wrong = differ ?? compared.wrong;
          const { windowRuns } = compared;
          log(
            `  round ${r + 1}: ours ${ours.ms.toFixed(0)} ms (block ${ours.blockMs.toFixed(1)} ms; probeOverview alone ${storeMs.toFixed(1)} ms), again ${oursAgain.ms.toFixed(0)} ms (block ${oursAgain.blockMs.toFixed(1)} ms), old path ${old.ms.toFixed(0)} ms (block ${old.blockMs.toFixed(1)} ms), peer ${peer.ms.toFixed(0)} ms (block ${peer.blockMs.toFixed(1)} ms), ${windowRuns} runs in the window${wrong ? `; MISMATCH ${wrong}` : ''}`,
          );
          rounds.push({ ours, oursAgain, old, peer, wrong, windowRuns, storeMs });
        }
        const oursMs = median(rounds.map((x) => x.ours.ms));
        const peerMs = median(rounds.map((x) => x.peer.ms));
        const goal = GOAL_MS[n];
        const memory = store.overviewMemory?.();
        results.push({
          memoryBytesPerTarget: memory && memory.targets > 0 ? memory.bytes / memory.targets : null,
          engine,
          targets: n,
          everyMs: every,
          written,
          firstMs: first.ms,
          firstBlockMs: first.blockMs,
          oursMs,
          oursBlockMs: Math.max(...rounds.map((x) => x.ours.blockMs)),
          oursAgainMs: median(rounds.map((x) => x.oursAgain.ms)),
          oursAgainBlockMs: Math.max(...rounds.map((x) => x.oursAgain.blockMs)),
          oldMs: median(rounds.map((x) => x.old.ms)),
          oldBlockMs: Math.max(...rounds.map((x) => x.old.blockMs)),
          storeMs: median(rounds.map((x) => x.storeMs)),
          peerMs,
          peerBlockMs: Math.max(...rounds.map((x) => x.peer.blockMs)),
          windowRuns: rounds.at(-1)?.windowRuns,
          mismatch: rounds.map((x) => x.wrong).find((x) => x) ?? null,
          goalMs: goal,
          pass: rounds.every((x) => !x.wrong) && (goal === undefined || oursMs < goal),
        });
      } finally {
        await server.close();
      }
    } finally {
      await store.close();
      await drop();
    }
  }
  for (const n of FLOW_SIZES) {
    log(`${engine}, ${n} flows every ${FLOW_EVERY_MS / 1000} s: filling the last hour through the writer`);
    const { store, drop } = await freshStore(engine);
    try {
      let now = Date.now();
      const flows = flowList(n);
      const t0 = performance.now();
      let written = await writeFlowIntervals(store, flows, now - HOUR - MINUTE, now);
      log(`  ${written} intervals in ${((performance.now() - t0) / 1000).toFixed(1)} s; rolling up`);
      await store.rollup(Date.now());
      const clock = { now };
      const server = await serve(store, [], clock, flows);
      try {
        const rounds = [];
        for (let r = 0; r < ROUNDS; r++) {
          const later = Date.now();
          written += await writeFlowIntervals(store, flows, now, later);
          await store.rollup(later);
          written += await writeFlowIntervals(store, flows, later, later + 10_000);
          now = later + 10_000;
          clock.now = now;
          const ours = await timedGet(`${server.origin}/api/v1/flows`, 'ours');
          const peer = await timedGet(`${server.origin}/peer/flows`, 'peer');
          const { wrong, windowRuns } = await ask({ compare: n, list: 'flows' });
          log(
            `  round ${r + 1}: ours ${ours.ms.toFixed(0)} ms (block ${ours.blockMs.toFixed(1)} ms), peer ${peer.ms.toFixed(0)} ms (block ${peer.blockMs.toFixed(1)} ms), ${windowRuns} pings in the window${wrong ? `; MISMATCH ${wrong}` : ''}`,
          );
          rounds.push({ ours, peer, wrong, windowRuns });
        }
        flowResults.push({
          engine,
          flows: n,
          written,
          oursMs: median(rounds.map((x) => x.ours.ms)),
          oursBlockMs: Math.max(...rounds.map((x) => x.ours.blockMs)),
          peerMs: median(rounds.map((x) => x.peer.ms)),
          peerBlockMs: Math.max(...rounds.map((x) => x.peer.blockMs)),
          windowPings: rounds.at(-1)?.windowRuns,
          mismatch: rounds.map((x) => x.wrong).find((x) => x) ?? null,
        });
      } finally {
        await server.close();
      }
    } finally {
      await store.close();
      await drop();
    }
  }
}

const f = (/** @type {number} */ ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
const lines = [
  'GET /api/v1/targets over HTTP: ours (probeOverview) vs the per-target path (probeWindow + probeSeries each)',
  'engine    targets  every  runs/h   ours(after rollup)  ours(again)  first call  probeOverview alone  old path    old/ours(again)  peer        peer/ours  longest block ours / again / old / peer  memory/target  goal',
];
for (const r of results) {
  lines.push(
    [
      r.engine.padEnd(9),
      String(r.targets).padStart(7),
      `${r.everyMs / 1000} s`.padStart(6),
      String(Math.round((r.targets * HOUR) / r.everyMs)).padStart(8),
      f(r.oursMs).padStart(19),
      f(r.oursAgainMs).padStart(12),
      f(r.firstMs).padStart(11),
      f(r.storeMs).padStart(20),
      f(r.oldMs).padStart(11),
      fmtRatio(r.oldMs / r.oursAgainMs).padStart(16),
      f(r.peerMs).padStart(11),
      fmtRatio(r.peerMs / r.oursMs).padStart(10),
      `${f(r.oursBlockMs)} / ${f(r.oursAgainBlockMs)} / ${f(r.oldBlockMs)} / ${f(r.peerBlockMs)}`.padStart(
        41,
      ),
      (r.memoryBytesPerTarget === null ? '-' : `${(r.memoryBytesPerTarget / 1024).toFixed(1)} KB`).padStart(
        14,
      ),
      `${r.goalMs === undefined ? '' : `< ${r.goalMs} ms`} ${r.pass ? 'ok' : 'FAIL'}${r.mismatch ? ` (${r.mismatch})` : ''}`,
    ].join(' '),
  );
}
if (flowResults.length > 0) {
  lines.push(
    '',
    'GET /api/v1/flows over HTTP: ours (flowOverview) vs the per-flow path (flowWindow + flowSeries each)',
    'engine      flows  intervals/h  ours        peer        peer/ours  longest block ours / peer  check',
  );
  for (const r of flowResults)
    lines.push(
      [
        r.engine.padEnd(9),
        String(r.flows).padStart(7),
        String(Math.round((r.flows * HOUR) / FLOW_EVERY_MS)).padStart(12),
        f(r.oursMs).padStart(10),
        f(r.peerMs).padStart(11),
        fmtRatio(r.peerMs / r.oursMs).padStart(10),
        `${f(r.oursBlockMs)} / ${f(r.peerBlockMs)}`.padStart(27),
        ` ${r.mismatch ? `FAIL (${r.mismatch})` : 'ok'}`,
      ].join(' '),
    );
}
process.stdout.write(`${lines.join('\n')}\n`);
const out = new URL('out/', import.meta.url);
mkdirSync(out, { recursive: true });
const file = new URL(`overview-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, out);
writeFileSync(file, JSON.stringify({ quick, results, flowResults }, null, 2));
log(`wrote ${fileURLToPath(file)}`);
await client.terminate();
