// @ts-check
/**
 * The bench's child processes, one mode each (argv: <mode> <json args>). Results go back over IPC;
 * logs go to stderr. Servers run until the bench kills them; the other modes exit when done.
 */
import { createServer as createHttpServer, Agent as HttpAgent } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fetchText } from './blackbox.mjs';
import { loadDist } from './load-dist.mjs';

const [mode = '', rawArgs = '{}'] = process.argv.slice(2);
/** @type {any} */
const args = JSON.parse(rawArgs);

/**
 * Sends a message to the bench; resolves once it is written, so a child can exit right after.
 * @param {object} m
 * @returns {Promise<void>}
 */
const send = (m) =>
  new Promise((resolve) => (process.send ? process.send(m, undefined, {}, () => resolve()) : resolve()));
/** @param {string} msg */
const log = (msg) => process.stderr.write(`[${mode} ${process.pid}] ${msg}\n`);
const nowNs = () => process.hrtime.bigint();
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** @param {import('node:net').Server} server @returns {Promise<number>} */
function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // A deep backlog: the rate test opens thousands of connections a second.
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
}

/** Accepts connections and lets the client close them; what a TCP probe needs from a target. */
async function serveTcp() {
  const ports = [];
  for (let i = 0; i < (args.ports ?? 1); i++) {
    const server = createTcpServer({ allowHalfOpen: false }, (s) => {
      s.on('error', () => {});
      s.resume();
    });
    ports.push(await listen(server));
  }
  send({ type: 'ready', ports });
}

/** A tiny HTTP/1.1 server answering 200 `ok` to everything. */
async function serveHttp() {
  const server = createHttpServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3' });
    res.end('ok\n');
  });
  server.on('clientError', (_e, s) => s.destroy());
  send({ type: 'ready', ports: [await listen(server)] });
}

/**
 * @param {import('./load-dist.mjs').Dist} dist
 * @param {string} kind
 */
function probeKit(dist, kind) {
  const { runProbe, probes, systemClock } = dist;
  if (!runProbe || !probes || !systemClock) {
    throw new Error(`our probes cannot run: ${Object.values(dist.missing).join('; ')}`);
  }
  const def = probes[kind];
  if (!def) throw new Error(`no ${kind} probe in the registry`);
  if (def.unavailable) throw new Error(`unavailable: ${def.unavailable}`);
  return { runProbe, def, clock: systemClock };
}

/** Runs single probes on request from the bench (latency sections), one at a time. */
async function probeIpc() {
  const dist = await loadDist();
  /** @type {Map<string, Record<string, unknown>>} */
  const parsed = new Map();
  process.on('message', async (/** @type {any} */ m) => {
    try {
      const { runProbe, def, clock } = probeKit(dist, m.kind);
      const key = `${m.kind} ${JSON.stringify(m.options ?? {})}`;
      let options = parsed.get(key);
      if (!options) parsed.set(key, (options = def.options.parse(m.options ?? {})));
      const r = await runProbe(m.kind, m.target, options, { clock, timeoutMs: m.timeoutMs ?? 5000 });
      void send({
        type: 'probe',
        id: m.id,
        ok: r.ok,
        seconds: Number(r.durationNs) / 1e9,
        values: r.values ?? {},
        error: r.error,
      });
    } catch (err) {
      void send({
        type: 'probe',
        id: m.id,
        ok: false,
        seconds: NaN,
        values: {},
        error: { code: 'bench', message: String(/** @type {Error} */ (err).message ?? err) },
      });
    }
  });
  const missing = Object.entries(dist.missing).map(([k, v]) => `${k}: ${v}`);
  const unavailable = Object.fromEntries(
    Object.entries(dist.probes ?? {}).flatMap(([k, d]) => (d.unavailable ? [[k, d.unavailable]] : [])),
  );
  send({ type: 'ready', missing, unavailable });
}

/**
 * Runs `count` TCP probes (or as many as fit in `seconds`) with `concurrency` in flight, each result
 * observed by the agent's ProbeMetrics as the agent does. Counts only after `warmup` probes.
 */
async function probeLoad() {
  const dist = await loadDist();
  const { runProbe, def, clock } = probeKit(dist, 'tcp');
  const metrics = dist.makeMetrics?.();
  const options = def.options.parse({});
  /** @type {string[]} */
  const targets = args.targets;
  const concurrency = args.concurrency ?? 8;
  /** @type {Record<string, number>} */
  const errors = {};
  let ok = 0;
  let failed = 0;
  let started = 0;
  let firstError = '';

  const one = async () => {
    const target = /** @type {string} */ (targets[started++ % targets.length]);
    const startedAtMs = clock.wallMs();
    const result = await runProbe('tcp', target, options, { clock, timeoutMs: 5000 });
    metrics?.observe({ name: target, kind: 'tcp', target, startedAtMs, result });
    if (result.ok) ok++;
    else {
      failed++;
      const code = result.error?.code ?? 'unknown';
      errors[code] = (errors[code] ?? 0) + 1;
      firstError ||= `${result.error?.code}: ${result.error?.message} (${result.error?.cause ?? ''})`;
    }
  };
  /** @param {() => boolean} more */
  const drive = (more) =>
    Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (more()) await one();
      }),
    );

  // Warm up the JIT, the metrics' label maps and the server's accept queue before measuring.
  const warmup = args.warmup ?? 200;
  started = 0;
  await drive(() => started < warmup);
  ok = failed = started = 0;
  for (const k of Object.keys(errors)) delete errors[k];
  firstError = '';

  const cpu0 = cpuSeconds();
  const t0 = nowNs();
  if (args.count !== undefined) {
    await drive(() => started < args.count);
  } else {
    const end = t0 + BigInt(Math.round(args.seconds * 1e9));
    await drive(() => nowNs() < end);
  }
  const seconds = Number(nowNs() - t0) / 1e9;
  await send({
    type: 'result',
    ok,
    failed,
    errors,
    firstError,
    seconds,
    cpuSeconds: cpuSeconds() - cpu0,
    metricsObserved: metrics !== undefined,
    metricsMissing: dist.missing.ProbeMetrics,
  });
}

/**
 * Sends `/probe` requests to blackbox_exporter with `concurrency` in flight: `count` of them, or as many
 * as fit in `seconds`. A probe counts as ok when the exporter reports probe_success 1.
 */
async function blackboxLoad() {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: args.concurrency });
  /** @type {string[]} */
  const targets = args.targets;
  let ok = 0;
  let failed = 0;
  let started = 0;
  let firstError = '';
  const one = async () => {
    const target = /** @type {string} */ (targets[started++ % targets.length]);
    try {
      const url = `${args.base}/probe?module=${args.module}&target=${encodeURIComponent(target)}`;
      const r = await fetchText(url, agent);
      if (r.status === 200 && /^probe_success 1$/m.test(r.body)) ok++;
      else {
        failed++;
        firstError ||= `status ${r.status}: ${r.body.slice(0, 200)}`;
      }
    } catch (err) {
      failed++;
      firstError ||= String(/** @type {Error} */ (err).message ?? err);
    }
  };
  /** @param {() => boolean} more */
  const drive = (more) =>
    Promise.all(
      Array.from({ length: args.concurrency }, async () => {
        while (more()) await one();
      }),
    );
  const cpu0 = cpuSeconds();
  const t0 = nowNs();
  if (args.count !== undefined) await drive(() => started < args.count);
  else {
    const end = t0 + BigInt(Math.round(args.seconds * 1e9));
    await drive(() => nowNs() < end);
  }
  const seconds = Number(nowNs() - t0) / 1e9;
  agent.destroy();
  await send({ type: 'result', ok, failed, firstError, seconds, cpuSeconds: cpuSeconds() - cpu0 });
}

/**
 * `targets` TCP targets from a generated config file, parsed by the agent's own config parser, run by
 * the agent's Scheduler exactly as Agent.runTarget runs them (runProbe, then ProbeMetrics), for `seconds`.
 * Records every lateness event.
 */
async function scheduler() {
  const dist = await loadDist();
  const { runProbe, clock } = probeKit(dist, 'tcp');
  const Scheduler = dist.Scheduler;
  if (!Scheduler) throw new Error(`no scheduler: ${dist.missing.Scheduler}`);
  /** @type {number[]} */
  const ports = args.ports;
  const lines = [`interval: ${args.intervalMs}ms`, `timeout: ${args.timeoutMs}ms`, 'targets:'];
  for (let i = 0; i < args.targets; i++) {
    lines.push(`  - name: t${i}`, '    kind: tcp', `    target: 127.0.0.1:${ports[i % ports.length]}`);
  }
  const text = lines.join('\n') + '\n';
  /** @type {{ name: string, kind: string, target: string, intervalMs: number, timeoutMs: number, options: Record<string, unknown> }[]} */
  let targets;
  let configNote;
  const p0 = nowNs();
  try {
    if (!dist.parseConfig) throw new Error(dist.missing.parseConfig);
    targets = dist.parseConfig(text, 'bench.yaml', {}).targets;
    configNote = `parsed a ${args.targets}-target config in ${(Number(nowNs() - p0) / 1e6).toFixed(0)} ms`;
  } catch (err) {
    // The config parser is not what this section measures; build the same targets by hand.
    const options = probeKit(dist, 'tcp').def.options.parse({});
    targets = Array.from({ length: args.targets }, (_, i) => ({
      name: `t${i}`,
      kind: 'tcp',
      target: `127.0.0.1:${ports[i % ports.length]}`,
      intervalMs: args.intervalMs,
      timeoutMs: args.timeoutMs,
      options,
    }));
    configNote = `parseConfig failed (${String(/** @type {Error} */ (err).message ?? err).split('\n')[0]}); targets built directly`;
  }

  /** @type {number[]} */
  const lateness = [];
  /** @type {Record<string, number>} */
  const skipped = {};
  const sched = new Scheduler(clock, {
    lateness: (_id, s) => void lateness.push(s),
    skipped: (_id, reason) => void (skipped[reason] = (skipped[reason] ?? 0) + 1),
  });
  const metrics = dist.makeMetrics?.();
  let ok = 0;
  let failed = 0;
  /** @type {Record<string, number>} */
  const errors = {};
  for (const t of targets) {
    sched.add({
      id: t.name,
      intervalMs: t.intervalMs,
      run: async () => {
        const startedAtMs = clock.wallMs();
        const result = await runProbe(/** @type {string} */ (t.kind), t.target, t.options, {
          clock,
          timeoutMs: t.timeoutMs,
        });
        metrics?.observe({ name: t.name, kind: t.kind, target: t.target, startedAtMs, result });
        if (result.ok) ok++;
        else {
          failed++;
          const code = result.error?.code ?? 'unknown';
          errors[code] = (errors[code] ?? 0) + 1;
        }
      },
    });
  }
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loop.enable();
  const cpu0 = cpuSeconds();
  sched.start();
  await sleep(args.seconds * 1000);
  sched.stop();
  const cpu = cpuSeconds() - cpu0;
  loop.disable();
  await sched.idle();
  lateness.sort((a, b) => a - b);
  const q = (/** @type {number} */ p) =>
    lateness[Math.min(lateness.length - 1, Math.floor(p * lateness.length))] ?? NaN;
  await send({
    type: 'result',
    configNote,
    events: lateness.length,
    p50: q(0.5),
    p99: q(0.99),
    p999: q(0.999),
    max: lateness[lateness.length - 1] ?? NaN,
    over10ms: lateness.filter((s) => s >= 0.01).length,
    ok,
    failed,
    errors,
    skipped,
    cpuSeconds: cpu,
    seconds: args.seconds,
    // Node 20's histogram counts the sampling interval itself (an idle loop reads ~10 ms), so take it off.
    loopDelayP99: Math.max(0, loop.percentile(99) / 1e9 - LOOP_RESOLUTION_MS / 1e3),
    loopDelayMax: Math.max(0, loop.max / 1e9 - LOOP_RESOLUTION_MS / 1e3),
    metricsObserved: metrics !== undefined,
  });
}

const LOOP_RESOLUTION_MS = 10;

/** @type {Record<string, () => Promise<void>>} */
const modes = {
  'serve-tcp': serveTcp,
  'serve-http': serveHttp,
  'probe-ipc': probeIpc,
  'probe-load': probeLoad,
  'blackbox-load': blackboxLoad,
  scheduler,
};

const run = modes[mode];
if (!run) {
  log(`unknown mode ${mode}`);
  process.exit(2);
}
// The bench owns this process: when it goes away, so do we.
process.on('disconnect', () => process.exit(0));
try {
  await run();
  if (!mode.startsWith('serve-') && mode !== 'probe-ipc') process.disconnect?.();
} catch (err) {
  await send({ type: 'error', message: String(/** @type {Error} */ (err)?.message ?? err) });
  process.disconnect?.();
}
