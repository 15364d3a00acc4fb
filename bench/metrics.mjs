// @ts-check
/**
 * GET /metrics of an agent with 1,000 and 10,000 targets, scraped back to back over HTTP: scrape time,
 * size and lines, the longest event-loop block during the scrapes, and how late a 1 s scheduler's runs
 * start meanwhile. Ours: the agent's own server (src/api/server.ts), in its default lean exposition and
 * with per-target buckets on. Peer, in the same run: the exposition as it was done before (prom-client
 * Gauges, Histograms and Counters with a target label, bench/lib/peer-probe-metrics.mjs, rendered by one
 * `await registry.metrics()` and sent with res.end). See bench/README.md ("metrics.mjs").
 *
 *   npm run build && node bench/metrics.mjs [--quick] [--targets 1000,10000] [--seconds 10] [--no-build]
 *
 * Each case runs in a child process of its own (a fresh heap); the scraping client is a process of its
 * own, so reading 40 MB does not count as the agent's block. Progress on stderr, a table on
 * stdout, JSON in bench/out/metrics-<timestamp>.json. A missed goal prints FAIL; the exit code is 0.
 */
import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { log } from './lib/procs.mjs';
import { fmtRatio, quantile } from './lib/stats.mjs';
import { argv, flag, value } from './lib/args.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SELF = fileURLToPath(import.meta.url);

/** The goals at 10,000 targets (issue 11 item 4). */
const GOAL = { scrapeMs: 300, blockMs: 20, latenessP99Ms: 10 };
/** Runs of each target fed to the metrics before scraping: enough to fill the histograms' buckets. */
const RUNS_PER_TARGET = 20;
/** The scheduler-like timer set: this many jobs at 1 s, each run a no-op that only has a lateness. */
const SCHEDULER_JOBS = 1000;

if (argv[0] === '--child') {
  await child(
    /** @type {'peer' | 'lean' | 'buckets' | 'gzip'} */ (argv[1]),
    Number(argv[2]),
    Number(argv[3]),
  );
} else {
  await main();
}

async function main() {
  if (flag('help')) {
    process.stdout.write(
      'usage: node bench/metrics.mjs [--quick] [--targets 1000,10000] [--seconds 10] [--no-build]\n',
    );
    process.exit(0);
  }
  const quick = flag('quick');
  const sizes = (value('targets') ?? (quick ? '1000' : '1000,10000')).split(',').map(Number);
  const seconds = Number(value('seconds') ?? (quick ? 4 : 10));
  if (!flag('no-build')) {
    log('npm run build');
    await promisify(execFile)('npm', ['run', 'build', '--silent'], { cwd: ROOT }).catch((err) =>
      log(
        `build reported errors (carrying on with what tsc emitted): ${String(err.stdout ?? err).split('\n')[0]}`,
      ),
    );
  }
  /** @type {Record<string, Record<string, CaseResult>>} */
  const results = {};
  for (const n of sizes) {
    results[n] = {};
    for (const mode of /** @type {const} */ (['peer', 'lean', 'buckets', 'gzip'])) {
      log(`${n} targets, ${mode}: ${seconds} s of back-to-back scrapes`);
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--expose-gc', SELF, '--child', mode, String(n), String(seconds)],
        { cwd: ROOT, maxBuffer: 1 << 24 },
      );
      results[n][mode] = JSON.parse(stdout);
    }
  }

  const ms = (/** @type {number} */ v) => `${v.toFixed(1)} ms`;
  const rows = [];
  for (const n of sizes) {
    const { peer, lean, buckets, gzip } = /** @type {Record<string, CaseResult>} */ (results[n]);
    const line = (
      /** @type {string} */ what,
      /** @type {(r: CaseResult) => number} */ get,
      /** @type {(v: number) => string} */ fmt,
      /** @type {number | undefined} */ goal,
    ) => {
      const [p, l, b, z] = [get(peer), get(lean), get(buckets), get(gzip)];
      const verdict =
        goal === undefined || n < 10_000
          ? ''
          : l <= goal
            ? `ok (goal ${fmt(goal)})`
            : `FAIL (goal ${fmt(goal)})`;
      rows.push(
        `${String(n).padStart(6)}  ${what.padEnd(32)} ours ${fmt(l).padStart(10)}  buckets ${fmt(b).padStart(10)}  gzip ${fmt(z).padStart(10)}  peer ${fmt(p).padStart(10)}  ours/peer ${fmtRatio(l / p).padStart(7)}  buckets/peer ${fmtRatio(b / p).padStart(7)}  ${verdict}`,
      );
    };
    line('scrape time, median', (r) => r.scrapeMs.p50, ms, GOAL.scrapeMs);
    line('scrape time, max', (r) => r.scrapeMs.max, ms, undefined);
    line(
      'bytes on the wire',
      (r) => r.wire / 1e6,
      (v) => `${v.toFixed(2)} MB`,
      undefined,
    );
    line(
      'scrape size',
      (r) => r.bytes / 1e6,
      (v) => `${v.toFixed(2)} MB`,
      undefined,
    );
    line(
      'scrape lines',
      (r) => r.lines,
      (v) => String(Math.round(v)),
      undefined,
    );
    line('longest event-loop block', (r) => r.scraping.blockMs, ms, GOAL.blockMs);
    line('  main thread CPU in it', (r) => r.scraping.blockCpuMs, ms, undefined);
    line('longest block, main thread CPU', (r) => r.scraping.cpuBlockMs, ms, GOAL.blockMs);
    line('loop delay max (perf_hooks)', (r) => r.scraping.eldMaxMs, ms, undefined);
    line('1 s runs: start lateness p99', (r) => r.scraping.lateP99Ms, ms, GOAL.latenessP99Ms);
    line('1 s runs: start lateness max', (r) => r.scraping.lateMaxMs, ms, undefined);
    line('idle: longest block', (r) => r.idle.blockMs, ms, undefined);
    line('idle: main thread CPU in it', (r) => r.idle.blockCpuMs, ms, undefined);
    line('idle: longest, main thread CPU', (r) => r.idle.cpuBlockMs, ms, undefined);
    line('idle: start lateness p99', (r) => r.idle.lateP99Ms, ms, undefined);
    line(
      'scrapes in the window',
      (r) => r.scrapes,
      (v) => String(v),
      undefined,
    );
  }
  process.stdout.write(
    'targets  figure                       ours = lean default, buckets = ours with metrics.targetBuckets: true, gzip = ours asked for gzip, peer = prom-client registry.metrics() as before\n',
  );
  process.stdout.write(rows.join('\n') + '\n');
  const out = new URL('./out/', import.meta.url);
  mkdirSync(out, { recursive: true });
  const file = new URL(`metrics-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, out);
  writeFileSync(file, JSON.stringify({ seconds, results }, null, 2));
  log(`wrote ${fileURLToPath(file)}`);
}

/**
 * @typedef {{ blockMs: number, blockCpuMs: number, cpuBlockMs: number, eldMaxMs: number, lateP99Ms: number, lateMaxMs: number, lateRuns: number }} LoopFigures
 * @typedef {{ mode: string, hasOption: boolean, targets: number, scrapes: number, scrapeMs: { p50: number, max: number }, bytes: number, wire: number, lines: number, scraping: LoopFigures, idle: LoopFigures }} CaseResult
 */

/**
 * CPU time of this process's main thread so far, in ms, from the kernel's scheduler statistics
 * (/proc/self/task/<pid>/schedstat: nanoseconds on a CPU); NaN where there is no such file.
 */
function mainThreadCpuMs() {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return NaN;
  }
}

/**
 * One case: an agent (or the peer's registry) with `n` targets, observed RUNS_PER_TARGET times each, then
 * `seconds` idle and `seconds` of back-to-back scrapes, with the loop watched in both.
 * @param {'peer' | 'lean' | 'buckets' | 'gzip'} mode
 * @param {number} n
 * @param {number} seconds
 */
async function child(mode, n, seconds) {
  const dist = new URL('../dist/', import.meta.url);
  // The heap `coalmine run` gives the agent (src/core/heap.ts): a 1 MB young generation, size first.
  const { setLeanHeap } = await import(new URL('core/heap.js', dist).href);
  setLeanHeap(true);
  const { parseConfig } = await import(new URL('config/load.js', dist).href);
  const { Agent } = await import(new URL('agent/agent.js', dist).href);
  const { startServer } = await import(new URL('api/server.js', dist).href);
  const { Scheduler } = await import(new URL('core/scheduler.js', dist).href);
  const { systemClock } = await import(new URL('core/clock.js', dist).href);

  const lines = ['interval: 15s', `metrics: { targetBuckets: ${mode === 'buckets'} }`, 'targets:'];
  for (let i = 0; i < n; i++) {
    lines.push(
      i % 2 === 0
        ? `  - { name: web-${i}, kind: http, target: "http://10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080/health" }`
        : `  - { name: db-${i}, kind: tcp, target: "10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:5432" }`,
    );
  }
  const yaml = lines.join('\n');
  // The peer predates metrics.targetBuckets; so does the code before it (a bench run for the 'before'
  // figures), where every case has per-target buckets.
  const withoutOption = () => parseConfig(yaml.replace(/metrics: \{ targetBuckets: \w+ \}/, 'metrics: {}'));
  let hasOption = true;
  let config;
  if (mode === 'peer') config = withoutOption();
  else {
    try {
      config = parseConfig(yaml);
    } catch (err) {
      if (!/targetBuckets/.test(String(err))) throw err;
      hasOption = false;
      config = withoutOption();
    }
  }
  const agent = new Agent(config);

  /** @type {{ observe(o: unknown): void }} */
  let sink;
  /** @type {() => Promise<{ url: string, close(): Promise<void> }>} */
  let serve;
  if (mode === 'peer') {
    const { ProbeMetrics: PeerProbeMetrics } = await import('./lib/peer-probe-metrics.mjs');
    // The agent's registry with its probe families replaced by the previous ProbeMetrics.
    for (const m of agent.registry.getMetricsAsArray()) {
      if (/^(probe_|coalmine_probe_|coalmine_probes_)/.test(m.name))
        agent.registry.removeSingleMetric(m.name);
    }
    sink = new PeerProbeMetrics(agent.registry, config.metrics);
    serve = async () => {
      // src/api/server.ts's /metrics before: one await registry.metrics(), then res.end(text).
      const server = createServer(async (req, res) => {
        req.resume();
        const text = await agent.registry.metrics();
        res.writeHead(200, { 'content-type': agent.registry.contentType });
        res.end(text);
      });
      await new Promise((r) => server.listen(0, '127.0.0.1', () => r(undefined)));
      const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port;
      return {
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise((r) => server.close(() => r(undefined))),
      };
    };
  } else {
    // The agent's own ProbeMetrics, fed as runTarget feeds it (a private field: a bench reaches in).
    sink = /** @type {{ metrics: { observe(o: unknown): void } }} */ (/** @type {unknown} */ (agent)).metrics;
    serve = () => startServer(agent, '127.0.0.1', 0);
  }

  // Realistic runs: loopback-to-LAN wall times of 0.2-60 ms, a few failures, HTTP with its values.
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const us = (/** @type {number} */ v) => BigInt(Math.round(v * 1000));
  for (let run = 0; run < RUNS_PER_TARGET; run++) {
    for (const t of config.targets) {
      const base = 200 * Math.exp(rnd() * 5.7); // 0.2 ms to 60 ms, log-uniform
      const failed = rnd() < 0.02;
      const connect = base * 0.3;
      /** @type {Record<string, unknown>} */
      const result =
        t.kind === 'http'
          ? {
              ok: !failed,
              durationNs: us(base * 1.1),
              phases: {
                resolve: us(5),
                connect: us(connect),
                processing: us(base * 0.6),
                transfer: us(base * 0.1),
              },
              values: {
                http_redirects: 0,
                http_ssl: 0,
                ip_protocol: 4,
                http_status_code: failed ? 503 : 200,
                http_version: 1.1,
              },
            }
          : {
              ok: !failed,
              durationNs: us(base * 0.5),
              phases: { resolve: us(3), connect: us(connect) },
              values: { ip_protocol: 4 },
            };
      if (failed)
        result.error =
          t.kind === 'http'
            ? { code: 'http_status', message: 'status 503' }
            : { code: 'refused', message: 'refused' };
      else result.networkNs = us(base * 0.4);
      sink.observe({ name: t.name, kind: t.kind, target: t.target, startedAtMs: Date.now(), result });
    }
  }
  globalThis.gc?.();

  const server = await serve();
  /** @type {number[]} */
  let late = [];
  const scheduler = new Scheduler(systemClock, {
    lateness: (/** @type {string} */ _id, /** @type {number} */ s) => late.push(s * 1000),
  });
  for (let i = 0; i < SCHEDULER_JOBS; i++)
    scheduler.add({ id: `job-${i}`, intervalMs: 1000, run: async () => {} });
  scheduler.start();

  /** Watches the loop for `ms`: a 1 ms interval's own lateness, perf_hooks' delay, the scheduler's. */
  const watch = async (/** @type {number} */ ms, /** @type {() => Promise<void>} */ during) => {
    late = [];
    const eld = monitorEventLoopDelay({ resolution: 1 });
    eld.enable();
    let block = 0;
    let blockCpu = 0;
    let cpuBlock = 0;
    let last = performance.now();
    let lastCpu = mainThreadCpuMs();
    const tick = setInterval(() => {
      const now = performance.now();
      const cpu = mainThreadCpuMs();
      // The main thread's CPU in this stretch: what the agent did in it, against time spent waiting for
      // a core (on this shared 2-core machine, often most of a long stretch).
      const used = Math.min(now - last, cpu - lastCpu);
      if (now - last - 1 > block) {
        block = now - last - 1;
        blockCpu = used;
      }
      cpuBlock = Math.max(cpuBlock, used - 1);
      last = now;
      lastCpu = cpu;
    }, 1);
    const until = performance.now() + ms;
    await during();
    while (performance.now() < until) await new Promise((r) => setTimeout(r, 20));
    clearInterval(tick);
    eld.disable();
    const sorted = [...late].sort((a, b) => a - b);
    return {
      blockMs: Math.max(0, block),
      blockCpuMs: blockCpu,
      cpuBlockMs: Math.max(0, cpuBlock),
      eldMaxMs: eld.max / 1e6,
      lateP99Ms: quantile(sorted, 0.99),
      lateMaxMs: sorted.at(-1) ?? NaN,
      lateRuns: sorted.length,
    };
  };

  // Let the scheduler settle into its slots, then the idle baseline.
  await new Promise((r) => setTimeout(r, 1500));
  const idle = await watch(seconds * 500, async () => {});

  // The client: a process of its own, scraping back to back for `seconds`, so neither its CPU nor its
  // reading of the text counts as the agent's.
  const client = spawn(
    process.execPath,
    [
      '-e',
      `
      const http = require('node:http');
      const zlib = require('node:zlib');
      const [url, ms, gzip] = [process.argv[1], Number(process.argv[2]), process.argv[3] === 'gzip'];
      const scrape = () => new Promise((resolve, reject) => {
        const t0 = performance.now();
        http.get(url + '/metrics', { headers: gzip ? { 'accept-encoding': 'gzip' } : {} }, (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const ms = performance.now() - t0;
            const wire = Buffer.concat(chunks);
            const inflated = res.headers['content-encoding'] === 'gzip';
            if (gzip !== inflated) return reject(new Error('asked for gzip: ' + gzip + ', got it: ' + inflated));
            const body = (inflated ? zlib.gunzipSync(wire) : wire).toString('utf8');
            let lines = 0, success = 0, buckets = 0;
            for (const l of body.split('\\n')) {
              if (l === '') continue;
              lines++;
              if (l.startsWith('probe_success{')) success++;
              if (l.startsWith('coalmine_probe_duration_seconds_bucket{')) buckets++;
            }
            resolve({ status: res.statusCode, ms, bytes: Buffer.byteLength(body), wire: wire.length, lines, success, buckets });
          });
          res.on('error', reject);
        }).on('error', reject);
      });
      (async () => {
        const until = performance.now() + ms;
        const out = [];
        while (performance.now() < until || out.length < 3) out.push(await scrape());
        process.stdout.write(JSON.stringify(out));
      })();
      `,
      server.url,
      String(seconds * 1000),
      mode === 'gzip' ? 'gzip' : 'identity',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  /** @type {{ status: number, ms: number, bytes: number, wire: number, lines: number, success: number, buckets: number }[]} */
  let scrapes = [];
  const scraping = await watch(seconds * 1000, async () => {
    let out = '';
    client.stdout.setEncoding('utf8').on('data', (c) => (out += c));
    const code = await new Promise((resolve) => client.once('exit', resolve));
    if (code !== 0) throw new Error(`${mode}: the scraping client exited with ${code}`);
    scrapes = JSON.parse(out);
  });
  scheduler.stop();
  await server.close();
  await agent.close();

  // It did the work it reports: every scrape answered 200 with one probe_success per target, and with
  // a duration bucket per bound for each target where the exposition has per-target buckets.
  const bounds = config.metrics.buckets.length + 1;
  for (const s of scrapes) {
    if (s.status !== 200) throw new Error(`${mode}: a scrape answered ${s.status}`);
    if (s.success !== n) throw new Error(`${mode}: a scrape had ${s.success} probe_success series, not ${n}`);
    const want = mode !== 'peer' && mode !== 'buckets' && hasOption ? 2 * bounds : n * bounds;
    if (s.buckets !== want)
      throw new Error(
        `${mode}: a scrape had ${s.buckets} coalmine_probe_duration_seconds buckets, not ${want}`,
      );
  }
  const times = scrapes.map((s) => s.ms).sort((a, b) => a - b);
  /** @type {CaseResult} */
  const result = {
    mode,
    hasOption,
    targets: n,
    scrapes: scrapes.length,
    scrapeMs: { p50: quantile(times, 0.5), max: times.at(-1) ?? NaN },
    bytes: scrapes[0]?.bytes ?? 0,
    wire: scrapes[0]?.wire ?? 0,
    lines: scrapes[0]?.lines ?? 0,
    scraping,
    idle,
  };
  process.stdout.write(JSON.stringify(result));
}
