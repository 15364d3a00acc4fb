// @ts-check
/**
 * coalmine's network probes against Prometheus' blackbox_exporter, side by side in one run, on loopback
 * targets this script starts itself. See bench/README.md for what each line means.
 *
 *   npm run build && node bench/probes.mjs [--quick] [--only tcp,http,icmp,cpu,rate,scheduler,spread] [--no-build]
 *
 * It builds dist/ first (unless --no-build), prints progress to stderr, a table to stdout, and writes a
 * JSON copy to bench/out/. A missed target is a finding, not an error: the exit code is 0 either way.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { blackboxVersion, sampleValue, startBlackbox } from './lib/blackbox.mjs';
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
import { fmtRate, fmtRatio, fmtSeconds, median, quantile, summary } from './lib/stats.mjs';
import { flag, value } from './lib/args.mjs';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECTIONS = ['tcp', 'http', 'icmp', 'cpu', 'rate', 'scheduler', 'spread', 'memory'];

// ---------------------------------------------------------------- options

if (flag('help') || flag('h')) {
  process.stdout.write(
    'usage: node bench/probes.mjs [--quick] [--only tcp,http,icmp,cpu,rate,scheduler,spread,memory] [--no-build]\n' +
      '       [--n 200] [--icmp-rounds 30] [--k 5000] [--rate-seconds 5] [--scheduler-seconds 25] [--targets 10000]\n' +
      '       [--spread-targets 200] [--spread-seconds 20] [--spread-rounds 2] [--spread-stall-ms 1500]\n' +
      '       [--memory-seconds 60]\n',
  );
  process.exit(0);
}
const quick = flag('quick');
/** @param {string} name @param {number} full @param {number} small */
const num = (name, full, small) => {
  const v = value(name);
  const n = v === undefined ? (quick ? small : full) : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number (got ${v})`);
  return n;
};
const opts = {
  quick,
  only: (value('only') ?? SECTIONS.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
  n: num('n', 200, 30),
  icmpRounds: num('icmp-rounds', 30, 5),
  k: num('k', 5000, 500),
  cpuConcurrency: num('cpu-concurrency', 8, 8),
  rateSeconds: num('rate-seconds', 5, 1),
  rateConcurrency: num('rate-concurrency', 64, 64),
  schedulerSeconds: num('scheduler-seconds', 25, 5),
  targets: num('targets', 10_000, 10_000),
  spreadTargets: num('spread-targets', 200, 200),
  spreadSeconds: num('spread-seconds', 20, 8),
  spreadRounds: num('spread-rounds', 2, 1),
  spreadStallMs: num('spread-stall-ms', 1500, 1500),
  memorySeconds: num('memory-seconds', 60, 20),
  build: !flag('no-build'),
};
for (const s of opts.only)
  if (!SECTIONS.includes(s)) throw new Error(`--only: unknown section ${s} (known: ${SECTIONS})`);

// ---------------------------------------------------------------- report rows

/**
 * One line of the final table.
 * @typedef {{
 *   section: string, line: string, ours: string, peer: string, ratio: string, target: string,
 *   status: 'PASS' | 'FAIL' | 'UNAVAILABLE' | 'ERROR' | 'INFO', notes: string[], data: Record<string, unknown>
 * }} Row
 */
/** @type {Row[]} */
const rows = [];

/**
 * @param {string} section
 * @param {string} line
 * @param {string} why
 * @param {'UNAVAILABLE' | 'ERROR'} status
 */
function unavailableRow(section, line, why, status = 'UNAVAILABLE') {
  rows.push({
    section,
    line,
    ours: `${status === 'ERROR' ? 'error' : 'unavailable'}: ${why}`,
    peer: '',
    ratio: '',
    target: '',
    status,
    notes: [],
    data: { reason: why },
  });
  log(`${section}: ${status.toLowerCase()}: ${why}`);
}

// ---------------------------------------------------------------- shared fixtures (started lazily)

const tmp = mkdtempSync(join(tmpdir(), 'coalmine-bench-'));
/** @type {Map<string, Promise<any>>} */
const fixtures = new Map();
/**
 * @template T
 * @param {string} name
 * @param {() => Promise<T>} make
 * @returns {Promise<T>}
 */
function fixture(name, make) {
  let p = fixtures.get(name);
  if (!p) fixtures.set(name, (p = make()));
  return p;
}

/** TCP listeners on 8 ports in their own process, pinned to core 1 so they never share our core 0. */
const tcpServers = () =>
  fixture('tcp servers', async () => {
    log('starting 8 TCP listeners (own process, core 1)');
    const proc = spawnChild('serve-tcp', { ports: 8 }, { cpu: 1 });
    const { ports } = await nextMessage(proc, 'ready', 10_000);
    return { proc, ports: /** @type {number[]} */ (ports) };
  });

/** An HTTP server answering 200 in its own process, pinned to core 1. */
const httpServer = () =>
  fixture('http server', async () => {
    log('starting the HTTP target server (own process, core 1)');
    const proc = spawnChild('serve-http', {}, { cpu: 1 });
    const { ports } = await nextMessage(proc, 'ready', 10_000);
    return { proc, port: /** @type {number} */ (ports[0]) };
  });

/**
 * blackbox_exporter on core 0 with GOMAXPROCS=1: the same single core our single-threaded agent gets in
 * every section (Go would pick GOMAXPROCS=1 from the affinity mask anyway; it is set to be explicit).
 */
const blackbox = () =>
  fixture('blackbox', async () => {
    log('starting blackbox_exporter pinned to core 0 with GOMAXPROCS=1');
    return startBlackbox(tmp, { name: 'blackbox', cpu: 0, gomaxprocs: 1 });
  });

/**
 * Our probes in a child process, run one at a time on request (the latency sections).
 * @returns {Promise<{ probe(kind: string, target: string, options?: object): Promise<{ ok: boolean, seconds: number, values: Record<string, number>, error?: { code: string, message: string } }>, missing: string[], unavailable: Record<string, string> }>}
 */
const prober = () =>
  fixture('prober', async () => {
    log('starting our prober (child process running runProbe from dist/, core 0)');
    const proc = spawnChild('probe-ipc', {}, { cpu: 0 });
    const ready = await nextMessage(proc, 'ready', 20_000);
    let nextId = 0;
    /** @type {Map<number, (m: any) => void>} */
    const waiting = new Map();
    proc.on('message', (/** @type {any} */ m) => {
      if (m?.type !== 'probe') return;
      waiting.get(m.id)?.(m);
      waiting.delete(m.id);
    });
    return {
      missing: ready.missing,
      unavailable: ready.unavailable,
      probe: (kind, target, options = {}) =>
        new Promise((resolve) => {
          const id = nextId++;
          waiting.set(id, resolve);
          proc.send({ id, kind, target, options, timeoutMs: 5000 });
        }),
    };
  });

// ---------------------------------------------------------------- latency sections

/**
 * Runs the reference tool, our probe and blackbox_exporter in turn, `n` times, rotating which goes first
 * so drift (CPU frequency, cache, another process) hits all three alike. Each returns seconds, or throws.
 * @param {string} section
 * @param {number} n
 * @param {{ reference: (counted: boolean) => Promise<number>, ours: (counted: boolean) => Promise<number>, peer: (counted: boolean) => Promise<number> }} tools
 */
async function interleaved(section, n, tools) {
  const names = /** @type {const} */ (['reference', 'ours', 'peer']);
  /** @type {Record<string, number[]>} */
  const samples = { reference: [], ours: [], peer: [] };
  /** @type {Record<string, number>} */
  const failures = { reference: 0, ours: 0, peer: 0 };
  /** @type {Record<string, string>} */
  const firstError = {};
  const warmup = Math.min(10, Math.ceil(n / 10));
  for (let i = -warmup; i < n; i++) {
    for (let j = 0; j < 3; j++) {
      const name = names[((i % 3) + 3 + j) % 3];
      if (!name) continue;
      try {
        const s = await tools[name](i >= 0);
        if (i >= 0) samples[name]?.push(s);
      } catch (err) {
        if (i >= 0) failures[name] = (failures[name] ?? 0) + 1;
        firstError[name] ??= String(/** @type {Error} */ (err).message ?? err);
      }
    }
    if (i > 0 && i % 50 === 0) log(`${section}: ${i}/${n} rounds`);
  }
  return { samples, failures, firstError };
}

/**
 * Turns a latency comparison into a row: overhead = median(tool) - median(reference).
 * @param {string} section
 * @param {string} line
 * @param {string} reference name of the reference measurement
 * @param {{ samples: Record<string, number[]>, failures: Record<string, number>, firstError: Record<string, string> }} r
 * @param {{ ours?: number[], peer?: number[], reference?: number[] }} [override] samples to use instead of r's
 */
function overheadRow(section, line, reference, r, override = {}) {
  const ref = override.reference ?? r.samples.reference ?? [];
  const ours = override.ours ?? r.samples.ours ?? [];
  const peer = override.peer ?? r.samples.peer ?? [];
  const notes = [];
  for (const [who, count] of Object.entries(r.failures)) {
    if (count > 0) notes.push(`${who}: ${count} failed runs, first: ${r.firstError[who]}`);
  }
  if (ref.length === 0 || ours.length === 0 || peer.length === 0) {
    const empty = [
      ['reference', ref],
      ['ours', ours],
      ['blackbox', peer],
    ]
      .filter(([, v]) => v.length === 0)
      .map(([k]) => k);
    rows.push({
      section,
      line,
      ours: 'error',
      peer: '',
      ratio: '',
      target: 'ratio <= 0.50',
      status: 'ERROR',
      notes: [`no successful runs for: ${empty.join(', ')}`, ...notes],
      data: { failures: r.failures, firstError: r.firstError },
    });
    return;
  }
  const refMed = median(ref);
  const oursOver = median(ours) - refMed;
  const peerOver = median(peer) - refMed;
  const ratio = peerOver > 0 ? oursOver / peerOver : NaN;
  // ours <= 0.5 x peer is the target whatever the signs: an overhead below the reference's is a pass.
  const pass = oursOver <= 0.5 * peerOver;
  notes.unshift(
    `${reference} median ${fmtSeconds(refMed)}; our median ${fmtSeconds(median(ours))}; blackbox median ${fmtSeconds(median(peer))} (n = ${ref.length}/${ours.length}/${peer.length})`,
  );
  notes.push(`without the reference: our median is ${fmtRatio(median(ours) / median(peer))} blackbox's`);
  if (!(peerOver > 0))
    notes.push(
      'blackbox overhead is not positive, so the ratio is undefined; judged on ours <= 0.5 x blackbox',
    );
  rows.push({
    section,
    line,
    ours: fmtSeconds(oursOver),
    peer: fmtSeconds(peerOver),
    ratio: fmtRatio(ratio),
    target: 'ratio <= 0.50',
    status: pass ? 'PASS' : 'FAIL',
    notes,
    data: {
      oursOverheadSeconds: oursOver,
      peerOverheadSeconds: peerOver,
      ratio,
      reference: summary(ref),
      ours: summary(ours),
      peer: summary(peer),
      failures: r.failures,
      firstError: r.firstError,
    },
  });
}

/**
 * A command line run on one core when taskset exists, so the reference tools share core 0 with ours
 * and blackbox_exporter.
 * @param {number} cpu @param {string} cmd @param {string[]} args
 * @returns {[string, string[]]}
 */
const pinned = (cpu, cmd, args) =>
  TASKSET && cpu < CPUS ? [TASKSET, ['-c', String(cpu), cmd, ...args]] : [cmd, args];

/** @param {string} url @param {string} field a curl -w variable */
async function curlSeconds(url, field) {
  const { stdout } = await run(
    ...pinned(0, 'curl', ['-s', '-o', '/dev/null', '--max-time', '5', '-w', `%{${field}}`, url]),
  );
  const s = Number(stdout.trim());
  if (!Number.isFinite(s) || s <= 0) throw new Error(`curl printed ${JSON.stringify(stdout)}`);
  return s;
}

/**
 * @param {Awaited<ReturnType<typeof blackbox>>} bb
 * @param {string} module
 * @param {string} target
 * @param {string} metric
 * @param {string} [label]
 */
async function blackboxSeconds(bb, module, target, metric, label) {
  const body = await bb.probe(module, target);
  if (sampleValue(body, 'probe_success') !== 1)
    throw new Error(`blackbox ${module} probe of ${target} failed`);
  const s = sampleValue(body, metric, label);
  if (s === undefined) throw new Error(`no ${metric} in blackbox's answer`);
  return s;
}

/**
 * @param {Awaited<ReturnType<typeof prober>>} p
 * @param {string} kind
 * @param {string} target
 * @param {(values: Record<string, number>, seconds: number) => number} pick
 */
async function oursSeconds(p, kind, target, pick) {
  const r = await p.probe(kind, target);
  if (!r.ok) throw new Error(`${r.error?.code}: ${r.error?.message}`);
  return pick(r.values, r.seconds);
}

/** @param {string} kind */
async function ourKindAvailable(kind) {
  const p = await prober();
  if (p.unavailable[kind]) return { p, why: p.unavailable[kind] };
  if (p.missing.some((m) => m.startsWith('runProbe') || m.startsWith('registry')))
    return { p, why: p.missing.join('; ') };
  return { p, why: undefined };
}

async function sectionTcp() {
  const line = 'TCP connect: overhead over curl %{time_connect} (median)';
  const { p, why } = await ourKindAvailable('tcp');
  if (why) return unavailableRow('tcp', line, why);
  const [srv, bb] = await Promise.all([httpServer(), blackbox()]);
  const target = `127.0.0.1:${srv.port}`;
  log(`tcp: ${opts.n} rounds of curl / our tcp probe / blackbox tcp_connect against ${target}`);
  const r = await interleaved('tcp', opts.n, {
    reference: () => curlSeconds(`http://${target}/`, 'time_connect'),
    ours: () => oursSeconds(p, 'tcp', target, (_v, s) => s),
    peer: () => blackboxSeconds(bb, 'tcp_connect', target, 'probe_duration_seconds'),
  });
  overheadRow('tcp', line, 'curl time_connect', r);
}

async function sectionHttp() {
  const line = 'HTTP GET: overhead over curl %{time_total} (median)';
  const { p, why } = await ourKindAvailable('http');
  if (why) return unavailableRow('http', line, why);
  const [srv, bb] = await Promise.all([httpServer(), blackbox()]);
  const url = `http://127.0.0.1:${srv.port}/`;
  log(`http: ${opts.n} rounds of curl / our http probe / blackbox http_2xx against ${url}`);
  const r = await interleaved('http', opts.n, {
    reference: () => curlSeconds(url, 'time_total'),
    ours: () => oursSeconds(p, 'http', url, (_v, s) => s),
    peer: () => blackboxSeconds(bb, 'http_2xx', url, 'probe_duration_seconds'),
  });
  overheadRow('http', line, 'curl time_total', r);
}

async function sectionIcmp() {
  const line = 'ICMP echo: RTT overhead over fping (median)';
  const { p, why } = await ourKindAvailable('icmp');
  if (why) return unavailableRow('icmp', line, why);
  const bb = await blackbox();
  const probeTarget = '127.0.0.1';
  /** @type {number[]} */ const fpingAll = [];
  /** @type {number[]} */ const fpingMins = [];
  /** @type {number[]} */ const oursMins = [];
  log(
    `icmp: ${opts.icmpRounds} rounds of fping -C 20 / our icmp probe / blackbox icmp against ${probeTarget}`,
  );
  const r = await interleaved('icmp', opts.icmpRounds, {
    reference: async (counted) => {
      // fping -q -C prints "127.0.0.1 : 0.03 0.02 ..." (ms per packet, "-" when lost) on stderr.
      const { stderr } = await run(...pinned(0, 'fping', ['-C', '20', '-q', '-p', '20', probeTarget])).catch(
        (e) => e,
      );
      const ms = String(stderr ?? '')
        .split(':')
        .slice(1)
        .join(':')
        .trim()
        .split(/\s+/)
        .map(Number)
        .filter(Number.isFinite);
      if (ms.length === 0) throw new Error(`fping printed ${JSON.stringify(stderr)}`);
      const s = ms.map((v) => v / 1000);
      if (counted) {
        fpingAll.push(...s);
        fpingMins.push(Math.min(...s));
      }
      return median(s);
    },
    ours: (counted) =>
      oursSeconds(p, 'icmp', probeTarget, (v) => {
        const med = v.icmp_rtt_median_seconds;
        if (med === undefined) throw new Error('our icmp probe returned no icmp_rtt_median_seconds');
        if (counted && v.icmp_rtt_min_seconds !== undefined) oursMins.push(v.icmp_rtt_min_seconds);
        return med;
      }),
    peer: () => blackboxSeconds(bb, 'icmp', probeTarget, 'probe_icmp_duration_seconds', 'phase="rtt"'),
  });
  // The reference is every packet fping timed, not the per-round medians.
  overheadRow('icmp', line, 'fping per-packet', r, { reference: fpingAll.length ? fpingAll : undefined });
  if (oursMins.length > 0 && fpingMins.length > 0) {
    const refMin = median(fpingMins);
    rows.push({
      section: 'icmp',
      line: 'ICMP echo: min RTT over fping min (median of rounds)',
      ours: fmtSeconds(median(oursMins) - refMin),
      peer: fmtSeconds(median(r.samples.peer ?? []) - refMin),
      ratio: '',
      target: 'info only',
      status: 'INFO',
      notes: [
        `fping round min median ${fmtSeconds(refMin)}; blackbox sends one packet per probe, so its figure is its single RTT`,
      ],
      data: { reference: summary(fpingMins), ours: summary(oursMins) },
    });
  }
}

// ---------------------------------------------------------------- CPU per probe

async function sectionCpu() {
  const line = `CPU time per TCP probe (${opts.k} probes, ${opts.cpuConcurrency} in flight)`;
  const { why } = await ourKindAvailable('tcp');
  if (why) return unavailableRow('cpu', line, why);
  const srv = await tcpServers();
  const targets = srv.ports.map((p) => `127.0.0.1:${p}`);
  const bb = await blackbox();
  const load = { base: bb.base, module: 'tcp_connect', targets, concurrency: opts.cpuConcurrency };
  // Both sides warm up alike (JIT and heap sizing for us, heap sizing for Go) before anything is counted.
  const warmup = Math.min(1000, opts.k);
  await runChild('blackbox-load', { ...load, count: warmup }, { cpu: 1, timeoutMs: 120_000 });
  /** @type {{ ours: number, peer: number, oursRun: any, peerRun: any }[]} */
  const reps = [];
  for (let rep = 1; rep <= CPU_REPEATS; rep++) {
    log(`cpu ${rep}/${CPU_REPEATS}: ${opts.k} TCP probes through runProbe + ProbeMetrics, pinned to core 0`);
    const oursRun = await runChild(
      'probe-load',
      { targets, concurrency: opts.cpuConcurrency, count: opts.k, warmup },
      { cpu: 0, timeoutMs: 600_000 },
    );
    log(
      `cpu ${rep}/${CPU_REPEATS}: ${opts.k} /probe?module=tcp_connect requests to blackbox_exporter, client on core 1`,
    );
    const before = procCpuSeconds(bb.pid);
    const peerRun = await runChild(
      'blackbox-load',
      { ...load, count: opts.k },
      { cpu: 1, timeoutMs: 600_000 },
    );
    const peerCpu = procCpuSeconds(bb.pid) - before;
    reps.push({
      ours: oursRun.cpuSeconds / opts.k,
      peer: peerCpu / opts.k,
      oursRun,
      peerRun: { ...peerRun, exporterCpuSeconds: peerCpu },
    });
  }
  const oursPer = median(reps.map((r) => r.ours));
  const peerPer = median(reps.map((r) => r.peer));
  const oursFailed = reps.reduce((n, r) => n + r.oursRun.failed, 0);
  const peerFailed = reps.reduce((n, r) => n + r.peerRun.failed, 0);
  const first = /** @type {{ oursRun: any, peerRun: any }} */ (reps[0]);
  const notes = [
    `median of ${CPU_REPEATS} runs; ours per run ${reps.map((r) => fmtSeconds(r.ours)).join(', ')} (process.cpuUsage), blackbox per run ${reps.map((r) => fmtSeconds(r.peer)).join(', ')} (/proc/${bb.pid}/stat)`,
    first.oursRun.metricsObserved
      ? 'every one of our results was observed by ProbeMetrics, as in the agent'
      : `ProbeMetrics unavailable (${first.oursRun.metricsMissing}), so NOT included in ours`,
    "blackbox's figure includes serving the /probe HTTP request, which is how it probes",
  ];
  if (oursFailed) notes.push(`${oursFailed} of our probes failed; first: ${first.oursRun.firstError}`);
  if (peerFailed) notes.push(`${peerFailed} blackbox probes failed; first: ${first.peerRun.firstError}`);
  const ratio = oursPer / peerPer;
  rows.push({
    section: 'cpu',
    line,
    ours: fmtSeconds(oursPer),
    peer: fmtSeconds(peerPer),
    ratio: fmtRatio(ratio),
    target: 'ratio <= 0.50',
    status: ratio <= 0.5 ? 'PASS' : 'FAIL',
    notes,
    data: { oursCpuSecondsPerProbe: oursPer, peerCpuSecondsPerProbe: peerPer, ratio, reps },
  });
}

const CPU_REPEATS = 3;

// ---------------------------------------------------------------- probes per second on one core

async function sectionRate() {
  const line = `TCP probes/s on one core (${opts.rateConcurrency} in flight, ${opts.rateSeconds} s)`;
  const { why } = await ourKindAvailable('tcp');
  if (why) return unavailableRow('rate', line, why);
  if (CPUS < 2) log('rate: fewer than 2 cores, so the target server shares the core under test');
  const srv = await tcpServers();
  const targets = srv.ports.map((p) => `127.0.0.1:${p}`);

  log(`rate: our TCP probes for ${opts.rateSeconds} s, pinned to core 0 (servers on core 1)`);
  const srvCpu0 = procCpuSeconds(/** @type {number} */ (srv.proc.pid));
  const ours = await runChild(
    'probe-load',
    { targets, concurrency: opts.rateConcurrency, seconds: opts.rateSeconds, warmup: 1000 },
    { cpu: 0, timeoutMs: (opts.rateSeconds + 60) * 1000 },
  );
  const srvCpu = procCpuSeconds(/** @type {number} */ (srv.proc.pid)) - srvCpu0;
  const oursRate = ours.ok / ours.seconds;

  const bb = await blackbox();
  log(
    `rate: blackbox_exporter (core 0, GOMAXPROCS=1) hammered for ${opts.rateSeconds} s from a client on core 1`,
  );
  const load = { base: bb.base, module: 'tcp_connect', targets, concurrency: opts.rateConcurrency };
  await runChild('blackbox-load', { ...load, seconds: 0.5 }, { cpu: 1, timeoutMs: 60_000 });
  const bbCpu0 = procCpuSeconds(bb.pid);
  const peer = await runChild(
    'blackbox-load',
    { ...load, seconds: opts.rateSeconds },
    { cpu: 1, timeoutMs: (opts.rateSeconds + 60) * 1000 },
  );
  const bbCpu = procCpuSeconds(bb.pid) - bbCpu0;
  const peerRate = peer.ok / peer.seconds;

  const notes = [
    `ours: ${ours.ok} ok, ${ours.failed} failed in ${ours.seconds.toFixed(2)} s; our process used ${pct(ours.cpuSeconds / ours.seconds)} of core 0`,
    `blackbox: ${peer.ok} ok, ${peer.failed} failed in ${peer.seconds.toFixed(2)} s; exporter used ${pct(bbCpu / peer.seconds)} of core 0, the load client ${pct(peer.cpuSeconds / peer.seconds)} of core 1`,
    `target servers (core 1) used about ${pct(srvCpu / (ours.seconds + 1))} of core 1 during our run (warm-up included)`,
  ];
  if (peer.cpuSeconds / peer.seconds > 0.9)
    notes.push(
      'the blackbox load client was near 100% of its core: the peer figure may be client-bound (a floor, not a ceiling)',
    );
  if (ours.failed) notes.push(`our failures: ${JSON.stringify(ours.errors)}; first: ${ours.firstError}`);
  if (peer.failed) notes.push(`blackbox failures; first: ${peer.firstError}`);
  const pass = oursRate >= 3000 && ours.failed === 0;
  if (oursRate >= 3000 && ours.failed > 0)
    notes.push('FAIL because some of our probes failed: every probe must succeed');
  rows.push({
    section: 'rate',
    line,
    ours: fmtRate(oursRate),
    peer: fmtRate(peerRate),
    ratio: fmtRatio(oursRate / peerRate),
    target: 'ours >= 3000/s, 0 failed',
    status: pass ? 'PASS' : 'FAIL',
    notes,
    data: {
      oursPerSecond: oursRate,
      peerPerSecond: peerRate,
      ours,
      peer: { ...peer, exporterCpuSeconds: bbCpu },
      serverCpuSeconds: srvCpu,
    },
  });
}

/** @param {number} f */
const pct = (f) => `${Math.round(f * 100)}%`;

// ---------------------------------------------------------------- scheduler lateness

async function sectionScheduler() {
  const line = `Scheduler lateness, ${opts.targets} TCP targets every 10 s, ${opts.schedulerSeconds} s`;
  const { why } = await ourKindAvailable('tcp');
  if (why) return unavailableRow('scheduler', line, why);
  const srv = await tcpServers();
  log(
    `scheduler: ${opts.targets} tcp targets over ${srv.ports.length} ports, interval 10 s, for ${opts.schedulerSeconds} s (core 0; servers on core 1)`,
  );
  const r = await runChild(
    'scheduler',
    {
      ports: srv.ports,
      targets: opts.targets,
      intervalMs: 10_000,
      timeoutMs: 5_000,
      seconds: opts.schedulerSeconds,
    },
    { cpu: 0, timeoutMs: (opts.schedulerSeconds + 120) * 1000 },
  );
  const notes = [
    `${r.events} scheduled runs; lateness p50 ${fmtSeconds(r.p50)}, p99 ${fmtSeconds(r.p99)}, p99.9 ${fmtSeconds(r.p999)}, max ${fmtSeconds(r.max)}; ${r.over10ms} runs >= 10 ms late`,
    `probes: ${r.ok} ok, ${r.failed} failed ${r.failed ? JSON.stringify(r.errors) : ''}; skipped slots ${JSON.stringify(r.skipped)}; ${pct(r.cpuSeconds / r.seconds)} of core 0; event loop delay p99 ${fmtSeconds(r.loopDelayP99)}, max ${fmtSeconds(r.loopDelayMax)}`,
    r.configNote,
    'blackbox_exporter has no scheduler of its own: Prometheus schedules its scrapes, so there is no peer figure',
  ];
  if (!r.metricsObserved)
    notes.push('ProbeMetrics was unavailable, so results were not observed into metrics');
  rows.push({
    section: 'scheduler',
    line,
    ours: `p50 ${fmtSeconds(r.p50)} / p99 ${fmtSeconds(r.p99)} / max ${fmtSeconds(r.max)}`,
    peer: 'n/a (no scheduler)',
    ratio: 'n/a',
    target: 'p99 < 10 ms',
    status: r.p99 < 0.01 ? 'PASS' : 'FAIL',
    notes,
    data: r,
  });
}

// ---------------------------------------------------------------- spread: timeouts vs blackbox at one server

const SPREAD_CHILD = fileURLToPath(new URL('./lib/spread-child.mjs', import.meta.url));
const SPREAD_INTERVAL_MS = 1000;
// What our config gives a 1 s interval (min(10 s default, 0.9 x interval)); blackbox gets the same.
const SPREAD_TIMEOUT_MS = 900;

/**
 * Counts what one spread run did against what should have happened: every slot of every target that
 * fell due in the window was run or counted as skipped; every launched run reported one outcome.
 * @param {any} r a spread child's result
 */
function spreadFacts(r) {
  const [startMs, stopMs] = r.windowMs;
  const len = stopMs - startMs;
  /** @param {number} off @param {number} t */
  const dueBy = (off, t) => (t < off ? 0 : Math.floor((t - off) / SPREAD_INTERVAL_MS) + 1);
  let missing = 0;
  let extra = 0;
  let expected = 0;
  for (const [name, off] of Object.entries(/** @type {Record<string, number>} */ (r.offsets))) {
    const got = r.slotsById[name] ?? 0;
    // Slots due a second before the end must have been handled; none after the end may be.
    const lo = dueBy(off, len - 1000);
    const hi = dueBy(off, len + 20);
    expected += dueBy(off, len);
    missing += Math.max(0, lo - got);
    extra += Math.max(0, got - hi);
  }
  const due = Object.values(/** @type {Record<string, number>} */ (r.slotsById)).reduce((a, b) => a + b, 0);
  const launched = r.lateness.length - (r.skipped.overlap ?? 0);
  const timeouts = (r.outcomes.timeout ?? 0) + (r.outcomes['client-timeout'] ?? 0);
  /**
   * The most launches in one 10 ms slot within [from, to) ms of the child's clock.
   * @param {number} from @param {number} to
   */
  const burst = (from, to) => {
    /** @type {Map<number, number>} */
    const per = new Map();
    for (const t of r.launches)
      if (t >= from && t < to) per.set(Math.floor(t / 10), (per.get(Math.floor(t / 10)) ?? 0) + 1);
    const counts = [...per.values()];
    const slots = Math.max(1, Math.floor((to - from) / 10));
    // Empty slots count as zeros for the quantile.
    const all = [...counts, ...Array(Math.max(0, slots - counts.length)).fill(0)];
    return {
      max: Math.max(0, ...counts),
      p99: quantile(all, 0.99) ?? 0,
      mean: r.launches.filter((/** @type {number} */ t) => t >= from && t < to).length / slots,
    };
  };
  const sorted = [...r.lateness].sort((a, b) => a - b);
  return {
    due,
    expected,
    missing,
    extra,
    launched,
    finished: r.finished,
    accounted: missing === 0 && extra === 0 && launched === r.finished,
    timeouts,
    timeoutPct: r.finished ? (100 * timeouts) / r.finished : NaN,
    otherFailures: r.finished - (r.outcomes.ok ?? 0) - timeouts,
    outcomes: r.outcomes,
    skipped: r.skipped,
    lateness: {
      p50: quantile(sorted, 0.5),
      p99: quantile(sorted, 0.99),
      max: sorted[sorted.length - 1] ?? NaN,
    },
    durations: (() => {
      const d = r.durations
        .filter(Number.isFinite)
        .sort((/** @type {number} */ a, /** @type {number} */ b) => a - b);
      return { p50: quantile(d, 0.5), p99: quantile(d, 0.99), max: d[d.length - 1] };
    })(),
    over500ms: r.durations.filter((/** @type {number} */ d) => d >= 0.5).length,
    firstInterval: burst(startMs, startMs + SPREAD_INTERVAL_MS),
    steady: burst(startMs + SPREAD_INTERVAL_MS, stopMs),
    afterStall:
      r.stalledAtMs === undefined
        ? undefined
        : burst(r.stalledAtMs + r.stallMs, r.stalledAtMs + r.stallMs + SPREAD_INTERVAL_MS),
    cpuPerRun: r.cpuSeconds / Math.max(1, r.finished),
  };
}

/** @param {ReturnType<typeof spreadFacts>[]} runs */
function sumSpread(runs) {
  const finished = runs.reduce((n, f) => n + f.finished, 0);
  const timeouts = runs.reduce((n, f) => n + f.timeouts, 0);
  return { finished, timeouts, pct: finished ? (100 * timeouts) / finished : NaN };
}

/**
 * "One small server": Python's http.server, single-threaded with a listen backlog of 5, as people run
 * it in front of a test page; pinned to core 1. It serves a one-file folder, so every target gets 200.
 */
const smallHttpServer = () =>
  fixture('small http server', async () => {
    const root = join(tmp, 'www');
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'index.html'), 'ok\n');
    const port = /** @type {number} */ (await freePort());
    log(`starting python3 -m http.server on 127.0.0.1:${port} (core 1)`);
    const proc = spawnTracked(
      'python http.server',
      'python3',
      ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', root],
      { cpu: 1, stdio: ['ignore', 'ignore', 'ignore'] },
    );
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`python3 -m http.server exited with ${proc.exitCode}`);
      const up = await new Promise((resolve) => {
        const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
        s.on('error', () => resolve(false));
      });
      if (up) break;
      if (Date.now() > deadline) throw new Error('python3 -m http.server did not listen within 10 s');
      await sleep(50);
    }
    return { proc, port };
  });

// ---------------------------------------------------------------- memory: RSS with the spread targets

/** A process's resident set size now, bytes (VmRSS of /proc/PID/status). @param {number} pid */
function procRssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/**
 * Samples a process's RSS once a second until the returned function is called; what it returns covers
 * the samples after the first `warmupS` seconds (start-up is not the steady state).
 * @param {number} pid @param {number} warmupS
 */
function rssSampler(pid, warmupS) {
  /** @type {number[]} */
  const samples = [];
  let ticks = 0;
  const timer = setInterval(() => {
    if (++ticks <= warmupS) return;
    try {
      samples.push(procRssBytes(pid));
    } catch {
      // The process ended; the caller sees fewer samples.
    }
  }, 1000);
  return () => {
    clearInterval(timer);
    return { max: Math.max(...samples), median: median(samples), samples: samples.length };
  };
}

/** The sum of a counter's samples in a Prometheus text page, and the distinct `target` labels. @param {string} text @param {string} name */
function counterSum(text, name) {
  let sum = 0;
  const targets = new Set();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    const t = /target="([^"]*)"/.exec(line);
    if (t) targets.add(t[1]);
  }
  return { sum, targets: targets.size };
}

/**
 * The spread targets again, for the memory the whole agent holds: `coalmine run` (the built binary with
 * its default SQLite store and API, as a user runs it) against blackbox_exporter driven at the same rate
 * by the spread section's scrape client. Each side's runs are counted (our /metrics, the client's own
 * ledger), so a side that idled cannot look small.
 */
async function sectionMemory() {
  const n = opts.spreadTargets;
  const seconds = opts.memorySeconds;
  const warmupS = Math.min(10, Math.floor(seconds / 3));
  const line = `Memory (RSS after ${warmupS} s warm-up) with ${n} HTTP targets every 1 s, ${seconds} s`;
  const { why } = await ourKindAvailable('http');
  if (why) return unavailableRow('memory', line, why);
  const [srv, bb] = await Promise.all([smallHttpServer(), blackbox()]);
  const targets = Array.from({ length: n }, (_, i) => ({
    name: `web-${String(i).padStart(3, '0')}`,
    url: `http://127.0.0.1:${srv.port}/?t=${i}`,
  }));

  const dir = mkdtempSync(join(tmp, 'memory-'));
  const config = join(dir, 'coalmine.yaml');
  const lines = [`interval: ${SPREAD_INTERVAL_MS}ms`, `timeout: ${SPREAD_TIMEOUT_MS}ms`, 'targets:'];
  for (const t of targets) lines.push(`  - name: ${t.name}`, '    kind: http', `    target: ${t.url}`);
  lines.push('store:', `  url: sqlite:${join(dir, 'coalmine.db')}`);
  writeFileSync(config, lines.join('\n') + '\n');
  const port = /** @type {number} */ (await freePort());
  log(`memory: coalmine run with ${n} HTTP targets at 1 s for ${seconds} s (core 0), RSS every second`);
  // The `coalmine` command npm installs (bin/coalmine, which execs node with its settings for run),
  // with this node first on PATH. BENCH_NODE_FLAGS reaches it through NODE_OPTIONS.
  const nodeDir = dirname(process.execPath);
  const flags = process.env.BENCH_NODE_FLAGS;
  const proc = spawnTracked(
    'coalmine run',
    join(ROOT, 'bin/coalmine'),
    ['run', '-c', config, '-l', `127.0.0.1:${port}`, '--log-level', 'warn'],
    {
      cpu: 0,
      env: {
        ...process.env,
        PATH: `${nodeDir}:${process.env.PATH ?? ''}`,
        ...(flags ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${flags}`.trim() } : {}),
      },
    },
  );
  const pid = /** @type {number} */ (proc.pid);
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (
    !(await fetch(`${base}/healthz`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      await killPid(proc);
      return unavailableRow(
        'memory',
        line,
        `coalmine run did not answer /healthz (exit ${proc.exitCode})`,
        'ERROR',
      );
    }
    await sleep(200);
  }
  const before = counterSum(await (await fetch(`${base}/metrics`)).text(), 'coalmine_probes_total');
  const cpu0 = procCpuSeconds(pid);
  const ourRss = rssSampler(pid, warmupS);
  await sleep(seconds * 1000);
  const o = ourRss();
  const after = counterSum(await (await fetch(`${base}/metrics`)).text(), 'coalmine_probes_total');
  const ourCpu = procCpuSeconds(pid) - cpu0;
  await killPid(proc);
  rmSync(dir, { recursive: true, force: true });
  const ourRuns = after.sum - before.sum;
  // Each target falls due once a second: over `seconds` it ran seconds or seconds +- 1 times.
  const ourDue = n * seconds;
  const ourAccounted = after.targets === n && Math.abs(ourRuns - ourDue) <= n;

  log(
    `memory: blackbox_exporter scraped for the same ${n} targets at 1 s for ${seconds} s (client on core 1)`,
  );
  const cpuBb0 = procCpuSeconds(bb.pid);
  const peerRss = rssSampler(bb.pid, warmupS);
  const p = spreadFacts(
    await runChild(
      'blackbox',
      { targets, intervalMs: SPREAD_INTERVAL_MS, timeoutMs: SPREAD_TIMEOUT_MS, seconds, base: bb.base },
      { cpu: 1, script: SPREAD_CHILD, timeoutMs: (seconds + 60) * 1000 },
    ),
  );
  const r = peerRss();
  const peerCpu = procCpuSeconds(bb.pid) - cpuBb0;
  const mb = (/** @type {number} */ b) => `${(b / 1e6).toFixed(1)} MB`;
  const accounted = ourAccounted && p.accounted;
  rows.push({
    section: 'memory',
    line,
    ours: `max ${mb(o.max)} (median ${mb(o.median)})`,
    peer: `max ${mb(r.max)} (median ${mb(r.median)})`,
    ratio: fmtRatio(o.max / r.max),
    target: 'ours < 80 MB, all runs counted',
    status: accounted && o.max < 80e6 ? 'PASS' : 'FAIL',
    notes: [
      `ours: coalmine run (SQLite store, API, /metrics), ${ourRuns} probe runs counted in coalmine_probes_total for ${after.targets} targets (${ourDue} due), CPU ${fmtSeconds(ourCpu / Math.max(1, ourRuns))} per run; ${o.samples} RSS samples`,
      `blackbox_exporter: ${p.finished} scrapes finished of ${p.due} due, CPU ${fmtSeconds(peerCpu / Math.max(1, p.finished))} per run (the exporter process); ${r.samples} RSS samples`,
      ...(accounted ? [] : ['FAIL because a side did not run every due probe (see the counts above)']),
    ],
    data: {
      ours: { ...o, runs: ourRuns, due: ourDue, cpuSeconds: ourCpu },
      peer: { ...r, facts: p, cpuSeconds: peerCpu },
    },
  });
}

async function sectionSpread() {
  const n = opts.spreadTargets;
  const line = `HTTP timeouts, ${n} targets every 1 s against one server (${opts.spreadRounds} x ${opts.spreadSeconds} s each)`;
  const { why } = await ourKindAvailable('http');
  if (why) return unavailableRow('spread', line, why);
  const [srv, bb] = await Promise.all([smallHttpServer(), blackbox()]);
  const targets = Array.from({ length: n }, (_, i) => ({
    name: `web-${String(i).padStart(3, '0')}`,
    url: `http://127.0.0.1:${srv.port}/?t=${i}`,
  }));
  const base = {
    targets,
    intervalMs: SPREAD_INTERVAL_MS,
    timeoutMs: SPREAD_TIMEOUT_MS,
    seconds: opts.spreadSeconds,
  };
  const childTimeout = (opts.spreadSeconds + 60) * 1000;
  /** @type {ReturnType<typeof spreadFacts>[]} */ const ours = [];
  /** @type {ReturnType<typeof spreadFacts>[]} */ const peer = [];
  for (let round = 1; round <= opts.spreadRounds; round++) {
    log(
      `spread ${round}/${opts.spreadRounds}: our agent, ${n} HTTP targets at 1 s for ${opts.spreadSeconds} s (core 0; server on core 1)`,
    );
    ours.push(
      spreadFacts(await runChild('agent', base, { cpu: 0, script: SPREAD_CHILD, timeoutMs: childTimeout })),
    );
    log(
      `spread ${round}/${opts.spreadRounds}: blackbox_exporter (core 0) scraped like Prometheus, same offsets (client on core 1)`,
    );
    const cpu0 = procCpuSeconds(bb.pid);
    const p = spreadFacts(
      await runChild(
        'blackbox',
        { ...base, base: bb.base },
        { cpu: 1, script: SPREAD_CHILD, timeoutMs: childTimeout },
      ),
    );
    p.cpuPerRun = (procCpuSeconds(bb.pid) - cpu0) / Math.max(1, p.finished);
    peer.push(p);
  }
  log(
    `spread: our agent again, stalled once for ${opts.spreadStallMs} ms halfway (what happens when many runs fall due together)`,
  );
  const stalled = spreadFacts(
    await runChild(
      'agent',
      { ...base, stallAtS: opts.spreadSeconds / 2, stallMs: opts.spreadStallMs },
      { cpu: 0, script: SPREAD_CHILD, timeoutMs: childTimeout },
    ),
  );

  const o = sumSpread(ours);
  const p = sumSpread(peer);
  const accounted = [...ours, ...peer, stalled].every((f) => f.accounted);
  const ratio = p.pct > 0 ? o.pct / p.pct : o.pct === 0 ? 0 : Infinity;
  const last = /** @type {ReturnType<typeof spreadFacts>} */ (ours[ours.length - 1]);
  const lastPeer = /** @type {ReturnType<typeof spreadFacts>} */ (peer[peer.length - 1]);
  /** @param {ReturnType<typeof spreadFacts>} f */
  const acct = (f) =>
    `${f.due} slots due (${f.expected} expected from the offsets), ${f.launched} launched, ${f.finished} finished, skipped ${JSON.stringify(f.skipped)}${f.missing || f.extra ? `; MISSING ${f.missing}, EXTRA ${f.extra}` : ''}`;
  /** @param {ReturnType<typeof spreadFacts>} f */
  const late = (f) =>
    `p50 ${fmtSeconds(f.lateness.p50)} / p99 ${fmtSeconds(f.lateness.p99)} / max ${fmtSeconds(f.lateness.max)}`;
  const notes = [
    `deadline ${SPREAD_TIMEOUT_MS} ms on both sides (blackbox via X-Prometheus-Scrape-Timeout-Seconds, as Prometheus sends it); the peer is scraped on our Scheduler, so both start each target at the same stable offset`,
    ...ours.map(
      (f, i) =>
        `ours ${i + 1}: ${f.timeouts} timeouts of ${f.finished} (${f.timeoutPct.toFixed(2)}%), other failures ${f.otherFailures} ${JSON.stringify(f.outcomes)}; ${f.over500ms} runs >= 0.5 s; duration p50 ${fmtSeconds(f.durations.p50 ?? NaN)} p99 ${fmtSeconds(f.durations.p99 ?? NaN)}; ${acct(f)}`,
    ),
    ...peer.map(
      (f, i) =>
        `blackbox ${i + 1}: ${f.timeouts} timeouts of ${f.finished} (${f.timeoutPct.toFixed(2)}%), other failures ${f.otherFailures} ${JSON.stringify(f.outcomes)}; ${f.over500ms} runs >= 0.5 s; duration p50 ${fmtSeconds(f.durations.p50 ?? NaN)} p99 ${fmtSeconds(f.durations.p99 ?? NaN)}; ${acct(f)}`,
    ),
    `CPU per run: ours ${fmtSeconds(median(ours.map((f) => f.cpuPerRun)))} (the whole agent process), blackbox ${fmtSeconds(median(peer.map((f) => f.cpuPerRun)))} (the exporter process)`,
  ];
  if (!accounted)
    notes.push(
      'FAIL because some due slot or launched run is not accounted for (see MISSING/EXTRA or launched != finished)',
    );
  rows.push({
    section: 'spread',
    line,
    ours: `${o.pct.toFixed(2)}% (${o.timeouts}/${o.finished})`,
    peer: `${p.pct.toFixed(2)}% (${p.timeouts}/${p.finished})`,
    ratio: fmtRatio(ratio),
    target: "ours <= blackbox's, all accounted",
    status: accounted && o.pct <= p.pct ? 'PASS' : 'FAIL',
    notes,
    data: { ours, peer, stalled, summary: { ours: o, peer: p, ratio } },
  });
  rows.push({
    section: 'spread',
    line: `Scheduler lateness, ${n} HTTP targets every 1 s (last round)`,
    ours: late(last),
    peer: `${late(lastPeer)} (our Scheduler in the scrape client)`,
    ratio: 'n/a',
    target: 'p99 < 10 ms',
    status: last.lateness.p99 < 0.01 ? 'PASS' : 'FAIL',
    notes: [`every round, ours: ${ours.map(late).join('; ')}`],
    data: { ours: ours.map((f) => f.lateness), peer: peer.map((f) => f.lateness) },
  });
  const st = /** @type {NonNullable<typeof stalled.afterStall>} */ (stalled.afterStall);
  // Hash offsets put starts in 10 ms slots about as a Poisson process would: mean n/100, and a burst
  // after a stall should be no worse than what a normal second already holds.
  const bound = Math.max(last.steady.max, lastPeer.steady.max) * 2;
  rows.push({
    section: 'spread',
    line: `Starts per 10 ms slot (mean ${(n / 100).toFixed(1)}): steady / first second / after a ${opts.spreadStallMs} ms stall`,
    ours: `max ${last.steady.max} (p99 ${last.steady.p99}) / max ${last.firstInterval.max} / max ${st.max}`,
    peer: `max ${lastPeer.steady.max} (p99 ${lastPeer.steady.p99}) / max ${lastPeer.firstInterval.max} / n/a`,
    ratio: 'n/a',
    target: `after stall <= 2 x steady max (${bound})`,
    status: st.max <= bound && stalled.accounted ? 'PASS' : 'FAIL',
    notes: [
      `the stalled run: lateness ${late(stalled)}; ${stalled.timeouts} timeouts of ${stalled.finished}; ${acct(stalled)}`,
    ],
    data: { steady: last.steady, first: last.firstInterval, afterStall: st, peerSteady: lastPeer.steady },
  });
}

// ---------------------------------------------------------------- build, run, report

async function build() {
  if (!opts.build) {
    if (!existsSync(join(ROOT, 'dist/probes/run.js')))
      throw new Error('dist/ is missing: run `npm run build` or drop --no-build');
    return 'skipped (--no-build)';
  }
  log('building dist/ (npm run build)');
  try {
    await run('npm', ['run', 'build', '--silent'], { cwd: ROOT, maxBuffer: 16 << 20 });
    return 'ok';
  } catch (err) {
    // tsc still emits JavaScript when there are type errors, so a half-finished probe elsewhere in the tree
    // need not stop the bench; a kind that cannot load is reported as unavailable.
    const out =
      String(/** @type {{ stdout?: string }} */ (err).stdout ?? '') +
      String(/** @type {{ stderr?: string }} */ (err).stderr ?? '');
    const errors = out.split('\n').filter((l) => /error TS\d+/.test(l));
    log(`build reported ${errors.length} type errors; continuing with what tsc emitted. First ones:`);
    for (const l of errors.slice(0, 8)) log(`  ${l}`);
    if (!existsSync(join(ROOT, 'dist/probes/run.js')))
      throw new Error('the build emitted no dist/probes/run.js');
    return `type errors (${errors.length}); ran on what tsc emitted`;
  }
}

/** @param {string} s @param {number} w */
const pad = (s, w) => (s.length >= w ? s : s + ' '.repeat(w - s.length));

function printTable() {
  const head = ['Line', 'coalmine', 'blackbox_exporter', 'Ratio', 'Target', 'Result'];
  const body = rows.map((r) => [r.line, r.ours, r.peer, r.ratio, r.target, r.status]);
  const widths = head.map((h, i) =>
    Math.min(i === 1 ? 70 : 200, Math.max(h.length, ...body.map((b) => (b[i] ?? '').length))),
  );
  const fmt = (/** @type {string[]} */ cells) =>
    cells
      .map((c, i) => pad(c, widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const out = [fmt(head), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const b of body) out.push(fmt(b));
  out.push('');
  for (const r of rows) {
    if (r.notes.length === 0) continue;
    out.push(`${r.status} ${r.line}`);
    for (const n of r.notes) out.push(`    ${n}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

async function main() {
  const started = new Date();
  // The bench itself (which only hands out work and waits) lives on core 1 with the target servers, so
  // core 0 holds only the tool being measured at any moment.
  if (TASKSET && CPUS >= 2)
    await run(TASKSET, ['-a', '-p', '-c', '1', String(process.pid)]).catch(() => undefined);
  const buildStatus = await build();
  /** @type {Record<string, () => Promise<void>>} */
  const sections = {
    tcp: sectionTcp,
    http: sectionHttp,
    icmp: sectionIcmp,
    cpu: sectionCpu,
    rate: sectionRate,
    scheduler: sectionScheduler,
    spread: sectionSpread,
    memory: sectionMemory,
  };
  for (const name of SECTIONS) {
    if (!opts.only.includes(name)) continue;
    log(`== ${name}`);
    try {
      await /** @type {() => Promise<void>} */ (sections[name])();
    } catch (err) {
      unavailableRow(name, `${name} section`, String(/** @type {Error} */ (err)?.message ?? err), 'ERROR');
    }
  }
  for (const [name, p] of fixtures) {
    const f = await p.catch(() => undefined);
    if (f?.stop) await f.stop();
    else if (f?.proc) await killPid(f.proc);
    fixtures.delete(name);
  }
  await killAll();
  printTable();

  const outDir = join(ROOT, 'bench/out');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `probes-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  const report = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    host: {
      cpus: CPUS,
      cpuModel: cpus()[0]?.model,
      node: process.version,
      taskset: TASKSET ?? null,
      blackbox: blackboxVersion(),
    },
    options: opts,
    build: buildStatus,
    rows,
  };
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  log(`wrote ${file}`);
  const failed = rows.filter((r) => r.status === 'FAIL' || r.status === 'ERROR').length;
  log(
    failed
      ? `${failed} line(s) missed their target or errored (see FAIL/ERROR above)`
      : 'every measured line met its target',
  );
}

await runBench(main, tmp);
