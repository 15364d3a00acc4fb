// @ts-check
/**
 * coalmine's canary → coalminer pair against each messaging system's own client library in a plain loop
 * (the "raw loop"), side by side in one run, over loopback brokers. See bench/README.md ("messaging.mjs").
 *
 *   node bench/messaging.mjs [--quick] [--only redis,nats,amqp,mqtt,postgres,websocket,kafka]
 *                            [--sections rate,latency,flows] [--no-build]
 *
 * It builds dist/ first (unless --no-build), prints progress to stderr, a table to stdout, and writes a JSON
 * copy to bench/out/messaging-<timestamp>.json. A missed target is a finding: the exit code is 0 either way.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  CPUS,
  TASKSET,
  killAll,
  runBench,
  killPid,
  log,
  nextMessage,
  spawnChild,
  spawnTracked,
} from './lib/procs.mjs';
import { fmtRatio, fmtSeconds } from './lib/stats.mjs';
import { flag, value } from './lib/args.mjs';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORKER = fileURLToPath(new URL('./lib/messaging-child.mjs', import.meta.url));
const SECTIONS = ['rate', 'latency', 'flows'];

/** Every transport measured, with its URL and its target for the rate line (none: info only). */
const TRANSPORTS = /** @type {const} */ ({
  redis: { url: 'redis://127.0.0.1:6379', port: 6379, target: 100_000, name: 'Redis pub/sub' },
  nats: { url: 'nats://127.0.0.1:4222', port: 4222, target: 150_000, name: 'NATS core' },
  amqp: { url: 'amqp://guest:guest@127.0.0.1:5672', port: 5672, target: 0, name: 'RabbitMQ (confirms)' },
  mqtt: { url: 'mqtt://127.0.0.1:1883', port: 1883, target: 0, name: 'MQTT QoS 1 (Mosquitto)' },
  postgres: {
    url: 'postgres://postgres@127.0.0.1:5432/test',
    port: 5432,
    target: 0,
    name: 'PostgreSQL NOTIFY',
  },
  websocket: { url: '', port: 0, target: 0, name: 'WebSocket relay' },
  kafka: { url: 'kafka://127.0.0.1:9092', port: 9092, target: 0, name: 'Kafka (acks=all)' },
});
/** @typedef {keyof typeof TRANSPORTS} Kind */
const KINDS = /** @type {Kind[]} */ (Object.keys(TRANSPORTS));
const FLOW_KINDS = /** @type {const} */ (['memory', 'redis']);

// ---------------------------------------------------------------- options

if (flag('help') || flag('h')) {
  process.stdout.write(
    'usage: node bench/messaging.mjs [--quick] [--only redis,nats,amqp,mqtt,postgres,websocket,kafka]\n' +
      '       [--sections rate,latency,flows] [--no-build] [--step-seconds 3.5] [--latency-seconds 10]\n' +
      '       [--flows 100] [--flow-seconds 30] [--idle-seconds 10] [--rates 1000,5000,...]\n',
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
/** @param {string} name @param {readonly string[]} known */
const list = (name, known) => {
  const v = (value(name) ?? known.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of v) if (!known.includes(s)) throw new Error(`--${name}: unknown ${s} (known: ${known})`);
  return v;
};
const opts = {
  quick,
  only: list('only', [...KINDS, 'memory']),
  sections: list('sections', SECTIONS),
  rates: (value('rates') ?? '1000,5000,10000,20000,50000,75000,100000,125000,150000,200000,250000')
    .split(',')
    .map(Number),
  /** Ours passes the rate line when it sustains this share of the raw loop's highest exact rate. */
  minRatio: 0.8,
  latencyRounds: num('latency-rounds', 5, 2),
  stepSeconds: num('step-seconds', 3.5, 1),
  latencySeconds: num('latency-seconds', 10, 2),
  flows: num('flows', 100, 100),
  flowSeconds: num('flow-seconds', 30, 5),
  idleSeconds: num('idle-seconds', 10, 2),
  /** A step fails when p99 from the intended send time passes this, or the sender is this far behind. */
  p99LimitMs: 1000,
  maxLagMs: 1000,
  lossTimeoutMs: 2000,
  build: !flag('no-build'),
};

// ---------------------------------------------------------------- rows

/**
 * @typedef {{
 *   section: string, line: string, ours: string, peer: string, extra: string, ratio: string, target: string,
 *   status: 'PASS' | 'FAIL' | 'UNAVAILABLE' | 'ERROR' | 'INFO', notes: string[], data: Record<string, unknown>
 * }} Row
 */
/** @type {Row[]} */
const rows = [];

/** @param {string} section @param {string} line @param {string} reason @param {'UNAVAILABLE' | 'ERROR'} [status] */
function unavailableRow(section, line, reason, status = 'UNAVAILABLE') {
  rows.push({
    section,
    line,
    ours: `${status === 'ERROR' ? 'error' : 'unavailable'}: ${reason}`,
    peer: '',
    extra: '',
    ratio: '',
    target: '',
    status,
    notes: [],
    data: { reason },
  });
  log(`${section} ${line}: ${status.toLowerCase()}: ${reason}`);
}

/** @param {number} n */
const rate = (n) => (Number.isFinite(n) ? `${Math.round(n).toLocaleString('en-US')}/s` : 'n/a');
/** @param {number} f */
const pct = (f) => (Number.isFinite(f) ? `${(f * 100).toFixed(f < 0.1 ? 2 : 0)}%` : 'n/a');
/** @param {{ p50: number, p99: number } | undefined} l */
const p50p99 = (l) => (l ? `p50 ${fmtSeconds(l.p50)} / p99 ${fmtSeconds(l.p99)}` : 'n/a');

// ---------------------------------------------------------------- brokers

/** @param {number} port */
const reachable = (port) =>
  new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (/** @type {boolean} */ ok) => (s.destroy(), resolve(ok));
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });

/** @type {{ proc: import('node:child_process').ChildProcess, url: string } | undefined} */
let relay;

/** The URL of `kind`, or why it cannot be measured here. @param {Kind | 'memory'} kind */
async function urlOf(kind) {
  if (kind === 'memory') return { url: 'memory://bench' };
  if (kind === 'websocket') {
    if (!relay) {
      // The relay is a broker like the others: a process of its own, on core 1 with the bench.
      log('starting the WebSocket relay from dist/ (own process, core 1)');
      const proc = spawnChild('relay', { kind: 'websocket' }, { cpu: 1, script: WORKER });
      try {
        const m = await nextMessage(proc, 'ready', 15_000);
        relay = { proc, url: m.url };
      } catch (err) {
        await killPid(proc);
        return { why: `the relay did not start: ${/** @type {Error} */ (err).message}` };
      }
    }
    return { url: relay.url };
  }
  const t = TRANSPORTS[kind];
  if (!(await reachable(t.port)))
    return {
      why: `nothing listens on 127.0.0.1:${t.port}${kind === 'kafka' ? ' (start it with: bash scripts/kafka.sh start)' : ''}`,
    };
  return { url: t.url };
}

/**
 * Runs one worker on core 0 and returns its result. Step lines arrive as they happen.
 * @param {string} mode @param {Record<string, unknown>} args @param {number} timeoutMs
 */
async function worker(mode, args, timeoutMs) {
  const child = spawnChild(mode, args, { cpu: 0, script: WORKER });
  try {
    return await nextMessage(child, 'result', timeoutMs);
  } finally {
    await killPid(child);
  }
}

// ---------------------------------------------------------------- 1. highest exact rate

/** @param {any[]} steps */
function lastPass(steps) {
  let best = 0;
  for (const s of steps) {
    if (!s.pass) break;
    best = s.rate;
  }
  return best;
}

/** @param {any} s */
function stepNote(s) {
  if (!s) return 'no step ran';
  if (s.sent === undefined) return `${rate(s.rate)}: ${s.reason}`;
  return (
    `${rate(s.rate)}: due ${s.due}, attempted ${s.attempted} (${pct(s.attempted / s.due)}), behind ${s.behind} ` +
    `(${fmtSeconds(s.behindSeconds)}), sent ${s.sent}, received ${s.received}, send errors ${s.sendFailed}, ` +
    `lost ${s.lost}, unaccounted ${s.unaccounted}, latency from intended ${p50p99(s.latency)}, ` +
    `process CPU ${pct(s.cpu)} (${fmtSeconds(s.cpuPerMessage)} per message, event loop ${pct(s.elu)} busy)` +
    (s.reason ? ` — ${s.reason}` : '')
  );
}

/** The rates of a ladder, with `extra` added in order (once). @param {number[]} rates @param {number} extra */
function withRate(rates, extra) {
  if (!(extra > 0) || rates.includes(extra)) return rates;
  return [...rates, extra].sort((a, b) => a - b);
}

/** @param {Kind} kind */
async function sectionRate(kind) {
  const t = TRANSPORTS[kind];
  const line = `${t.name}: highest exact rate, 1 canary → 1 coalminer`;
  const where = await urlOf(kind);
  if (!where.url) return unavailableRow('rate', line, /** @type {string} */ (where.why));
  const args = {
    kind,
    url: where.url,
    rates: opts.rates,
    stepSeconds: opts.stepSeconds,
    maxLagMs: opts.maxLagMs,
    p99LimitMs: opts.p99LimitMs,
    lossTimeoutMs: opts.lossTimeoutMs,
  };
  const timeout = (opts.rates.length + 1) * (opts.stepSeconds + 60) * 1000 + 60_000;
  /** @type {Record<string, any>} */
  const res = {};
  // The raw loop first: ours then also runs at minRatio × the raw loop's highest exact rate, so the
  // line says whether ours sustains that, not only which of the fixed steps it passed.
  log(`rate ${kind}: raw ladder ${opts.rates.join(', ')}/s, ${opts.stepSeconds} s per step (core 0)`);
  res.raw = await worker('ladder', { ...args, side: 'raw' }, timeout).catch((err) => ({
    unavailable: `worker failed: ${err.message}`,
  }));
  const peer = res.raw.unavailable ? NaN : lastPass(res.raw.steps);
  const goal = peer > 0 ? Math.round(peer * opts.minRatio) : NaN;
  const oursRates = withRate(opts.rates, goal);
  log(`rate ${kind}: ours ladder ${oursRates.join(', ')}/s, ${opts.stepSeconds} s per step (core 0)`);
  res.ours = await worker('ladder', { ...args, side: 'ours', rates: oursRates }, timeout).catch((err) => ({
    unavailable: `worker failed: ${err.message}`,
  }));
  if (res.ours.unavailable) return unavailableRow('rate', line, res.ours.unavailable);
  const top = opts.rates[opts.rates.length - 1] ?? 0;
  const ours = lastPass(res.ours.steps);
  const show = (/** @type {number} */ r, /** @type {any[]} */ steps) =>
    r === 0 ? 'none passed' : `${rate(r)}${r === top && steps.every((s) => s.pass) ? ' (top step)' : ''}`;
  const oursFail = res.ours.steps.find((/** @type {any} */ s) => !s.pass);
  const oursLast = res.ours.steps.filter((/** @type {any} */ s) => s.pass).at(-1);
  const notes = [
    `ours, last pass: ${stepNote(oursLast)}`,
    `ours, first fail: ${oursFail ? stepNote(oursFail) : 'none (every step passed)'}`,
  ];
  if (res.raw.unavailable) notes.push(`raw loop unavailable: ${res.raw.unavailable}`);
  else {
    const rawFail = res.raw.steps.find((/** @type {any} */ s) => !s.pass);
    const rawLast = res.raw.steps.filter((/** @type {any} */ s) => s.pass).at(-1);
    notes.push(`raw, last pass: ${stepNote(rawLast)}`);
    notes.push(`raw, first fail: ${rawFail ? stepNote(rawFail) : 'none (every step passed)'}`);
    if (peer === top && !rawFail)
      notes.push(`the raw loop passed the top step: its ceiling is higher, so the ratio is an upper bound`);
    notes.push(
      `goal: ours sustains ${opts.minRatio}x the raw loop's ${rate(peer)} = ${rate(goal)} (a step of its ladder)`,
    );
  }
  notes.push(
    'a step passes when >= 99% of the due messages were attempted, due = attempted + behind and attempted = sent + failed + pending exactly, every sent message arrived once (no loss, duplicate, local drop or unaccounted message), no send error, p99 <= 1 s',
  );
  const row = {
    section: 'rate',
    line,
    ours: show(ours, res.ours.steps),
    peer: res.raw.unavailable ? 'unavailable' : show(peer, res.raw.steps),
    extra: '',
    ratio: fmtRatio(ours / peer),
    target: `>= ${opts.minRatio}x raw`,
    status: /** @type {Row['status']} */ (peer > 0 && ours >= goal ? 'PASS' : 'FAIL'),
    notes,
    data: { ours: res.ours, raw: res.raw, oursLastPass: ours, rawLastPass: peer, goal },
  };
  rows.push(row);
  if (kind === 'redis') await redisBenchmark(row);
}

/** redis-benchmark's PUBLISH throughput (its own 50 clients, no pipelining) as an extra peer figure. */
async function redisBenchmark(/** @type {Row} */ row) {
  const bin = ['/usr/bin/redis-benchmark', '/usr/local/bin/redis-benchmark'].find(existsSync);
  if (!bin) {
    row.extra = 'redis-benchmark not found';
    return;
  }
  // A subscriber on the channel, so the server really fans each PUBLISH out (redis-cli discards it).
  const cli = ['/usr/bin/redis-cli', '/usr/local/bin/redis-cli'].find(existsSync);
  const sub = cli
    ? spawnTracked('redis-cli', cli, ['-h', '127.0.0.1', '-p', '6379', 'SUBSCRIBE', 'coalmine.bench'], {
        cpu: 1,
        stdio: ['ignore', 'ignore', 'ignore'],
      })
    : undefined;
  try {
    await new Promise((r) => setTimeout(r, 300));
    const n = quick ? 50_000 : 200_000;
    log(`rate redis: redis-benchmark -n ${n} -q PUBLISH coalmine.bench x (core 0)`);
    const cmd = ['-h', '127.0.0.1', '-p', '6379', '-n', String(n), '-q', 'PUBLISH', 'coalmine.bench', 'x'];
    const pin = TASKSET !== undefined && CPUS > 1;
    const { stdout } = await run(pin ? TASKSET : bin, pin ? ['-c', '0', bin, ...cmd] : cmd);
    const out = String(stdout).split('\r').at(-1)?.trim() ?? '';
    const m = /([\d.]+) requests per second/.exec(out);
    row.extra = m ? `${rate(Number(m[1]))} (redis-benchmark)` : `redis-benchmark: ${out}`;
    row.notes.push(
      `redis-benchmark PUBLISH: ${out} — 50 concurrent clients, no pipelining, ${sub ? 'one redis-cli subscriber' : 'no subscriber'}; requests/s acknowledged by the server, not deliveries counted`,
    );
    row.data.redisBenchmark = out;
  } catch (err) {
    row.extra = `redis-benchmark failed: ${/** @type {Error} */ (err).message.split('\n')[0]}`;
  } finally {
    if (sub) await killPid(sub);
  }
}

// ---------------------------------------------------------------- 2. latency at 1000/s

/**
 * The first message of one of `types` from a child; rejects when it exits first or after `timeoutMs`.
 * @param {import('node:child_process').ChildProcess} child @param {string[]} types @param {number} timeoutMs
 * @returns {Promise<any>}
 */
function nextOf(child, types, timeoutMs) {
  return Promise.race(types.map((t) => nextMessage(child, t, timeoutMs)));
}

/** @param {number[]} v */
const median = (v) => {
  const s = v.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? /** @type {number} */ (s[Math.floor((s.length - 1) / 2)]) : NaN;
};

/**
 * Latency at 1,000/s, ours and the raw loop alternating round by round (ours, raw, raw, ours, ...), so
 * whatever else loads the machine loads both alike; each side's figure is the median of its rounds.
 * @param {Kind} kind
 */
async function sectionLatency(kind) {
  const t = TRANSPORTS[kind];
  const line = `${t.name}: latency at 1,000/s, p50 from intended send`;
  const where = await urlOf(kind);
  if (!where.url) return unavailableRow('latency', line, /** @type {string} */ (where.why));
  const args = {
    kind,
    url: where.url,
    maxLagMs: opts.maxLagMs,
    p99LimitMs: opts.p99LimitMs,
    lossTimeoutMs: opts.lossTimeoutMs,
  };
  const rounds = opts.latencyRounds;
  const seconds = opts.latencySeconds / rounds;
  log(
    `latency ${kind}: ours and raw alternating, ${rounds} rounds of ${fmtSeconds(seconds)} each at 1000/s (core 0)`,
  );
  /** @type {Record<string, import('node:child_process').ChildProcess>} */
  const children = {};
  /** @type {Record<string, any>} */
  const res = { ours: { steps: [] }, raw: { steps: [] } };
  try {
    for (const side of ['ours', 'raw']) {
      const child = spawnChild('rounds', { ...args, side }, { cpu: 0, script: WORKER });
      children[side] = child;
      const m = await nextOf(child, ['ready', 'result'], 60_000).catch((err) => ({
        unavailable: `worker failed: ${err.message}`,
      }));
      if (m.type !== 'ready') res[side] = { unavailable: m.unavailable ?? 'no ready message' };
    }
    if (res.ours.unavailable) return unavailableRow('latency', line, res.ours.unavailable);
    for (let i = 0; i < rounds; i++) {
      for (const side of i % 2 === 0 ? ['ours', 'raw'] : ['raw', 'ours']) {
        if (res[side].unavailable) continue;
        const child = /** @type {import('node:child_process').ChildProcess} */ (children[side]);
        child.send({ type: 'run', step: i + 1, rate: 1000, seconds });
        const m = await nextMessage(child, 'step', (seconds + 60) * 1000);
        res[side].steps.push(m.step);
      }
    }
    for (const side of ['ours', 'raw']) {
      const child = children[side];
      if (!child || res[side].unavailable) continue;
      child.send({ type: 'close' });
      await nextMessage(child, 'result', 30_000).catch(() => undefined);
    }
  } finally {
    for (const child of Object.values(children)) await killPid(child);
  }
  /** @param {any[]} steps */
  const summary = (steps) => ({
    latency: {
      p50: median(steps.map((s) => s.latency?.p50)),
      p99: median(steps.map((s) => s.latency?.p99)),
    },
    latencyFromSent: {
      p50: median(steps.map((s) => s.latencyFromSent?.p50)),
      p99: median(steps.map((s) => s.latencyFromSent?.p99)),
    },
    pass: steps.length === rounds && steps.every((s) => s.pass),
    reason: steps
      .filter((s) => !s.pass)
      .map((s) => s.reason)
      .join(' | '),
    due: steps.reduce((n, s) => n + (s.due ?? 0), 0),
    attempted: steps.reduce((n, s) => n + (s.attempted ?? 0), 0),
    behind: steps.reduce((n, s) => n + (s.behind ?? 0), 0),
    sent: steps.reduce((n, s) => n + (s.sent ?? 0), 0),
    received: steps.reduce((n, s) => n + (s.received ?? 0), 0),
    lost: steps.reduce((n, s) => n + (s.lost ?? 0), 0),
    sendFailed: steps.reduce((n, s) => n + (s.sendFailed ?? 0), 0),
    unaccounted: steps.reduce((n, s) => n + (s.unaccounted ?? 0), 0),
    cpu: median(steps.map((s) => s.cpu)),
  });
  const o = summary(res.ours.steps);
  const r = res.raw.unavailable ? undefined : summary(res.raw.steps);
  if (!Number.isFinite(o.latency.p50))
    return unavailableRow('latency', line, o.reason || 'no result', 'ERROR');
  const ratio = r ? o.latency.p50 / r.latency.p50 : NaN;
  const paired = res.raw.unavailable
    ? []
    : res.ours.steps.map(
        (/** @type {any} */ s, /** @type {number} */ i) => s.latency?.p50 / res.raw.steps[i]?.latency?.p50,
      );
  const counts = (/** @type {any} */ x) =>
    `due ${x.due}, attempted ${x.attempted}, behind ${x.behind}, sent ${x.sent}, received ${x.received}, lost ${x.lost}, send errors ${x.sendFailed}, unaccounted ${x.unaccounted}; process CPU ${pct(x.cpu)}`;
  const notes = [
    `ours: from intended ${p50p99(o.latency)}, from actual send ${p50p99(o.latencyFromSent)}; ${counts(o)}`,
    r
      ? `raw:  from intended ${p50p99(r.latency)}, from actual send ${p50p99(r.latencyFromSent)}; ${counts(r)}`
      : `raw loop unavailable: ${res.raw.unavailable}`,
    `from actual send, ours ÷ raw p50: ${r ? fmtRatio(o.latencyFromSent.p50 / r.latencyFromSent.p50) : 'n/a'}; round by round (from intended): ${paired.map((x) => fmtRatio(x)).join(', ')}`,
    `${rounds} alternating rounds of ${fmtSeconds(seconds)} per side; each figure is the median of its rounds' p50 (p99)`,
  ];
  if (!o.pass) notes.push(`our run was not exact: ${o.reason}`);
  if (r && !r.pass) notes.push(`the raw loop's run was not exact: ${r.reason}`);
  rows.push({
    section: 'latency',
    line,
    ours: p50p99(o.latency),
    peer: r ? p50p99(r.latency) : 'unavailable',
    extra: '',
    ratio: fmtRatio(ratio),
    target: 'p50 <= 1.5x raw',
    status: ratio <= 1.5 && o.pass && r?.pass ? 'PASS' : 'FAIL',
    notes,
    data: { ours: res.ours, raw: res.raw, ratio },
  });
}

// ---------------------------------------------------------------- 3. cost of 100 flows

/** @param {'memory' | 'redis'} kind */
async function sectionFlows(kind) {
  const line = `${kind}: CPU of ${opts.flows} flows at 1 msg/s (one process)`;
  const where = await urlOf(kind);
  if (!where.url) return unavailableRow('flows', line, /** @type {string} */ (where.why));
  const args = {
    kind,
    url: where.url,
    flows: opts.flows,
    idleSeconds: opts.idleSeconds,
    warmSeconds: quick ? 2 : 5,
    measureSeconds: opts.flowSeconds,
    lossTimeoutMs: opts.lossTimeoutMs,
  };
  /** @type {Record<string, any>} */
  const res = {};
  for (const side of ['ours', 'raw']) {
    log(
      `flows ${kind}: ${side}, ${opts.flows} flows, idle ${opts.idleSeconds} s then ${opts.flowSeconds} s measured (core 0)`,
    );
    res[side] = await worker(
      'flows',
      { ...args, side },
      (opts.flowSeconds + opts.idleSeconds + 120) * 1000,
    ).catch((err) => ({ unavailable: `worker failed: ${err.message}` }));
  }
  if (res.ours.unavailable) return unavailableRow('flows', line, res.ours.unavailable);
  const o = res.ours;
  const r = res.raw;
  const exact = o.failed === 0 && o.lost === 0 && o.received === o.sent;
  const note = (/** @type {string} */ who, /** @type {any} */ x) =>
    `${who}: ${pct(x.busy.cpuSeconds / x.busy.seconds)} busy − ${pct(x.idle.cpuSeconds / x.idle.seconds)} idle baseline; sent ${x.sent}, received ${x.received}, lost ${x.lost}, send errors ${x.failed}; latency ${p50p99(x)}`;
  const notes = [note('ours', o), r.unavailable ? `raw loop unavailable: ${r.unavailable}` : note('raw', r)];
  notes.push(
    kind === 'memory'
      ? "the raw loop for memory:// is our MemoryTransport's publish/subscribe without Canary/Coalminer: the cost of the accounting alone"
      : 'ours: 1 Canary on one transport, 100 Coalminers sharing a second one; raw: 100 ioredis subscriptions, one PUBLISH per channel per second',
  );
  if (!exact) notes.push('our accounting was not exact: see sent/received/lost');
  rows.push({
    section: 'flows',
    line,
    ours: pct(o.cpuShare),
    peer: r.unavailable ? 'unavailable' : pct(r.cpuShare),
    extra: '',
    ratio: r.unavailable ? 'n/a' : fmtRatio(o.cpuShare / r.cpuShare),
    target: '< 2% of a core',
    status: o.cpuShare < 0.02 && exact ? 'PASS' : 'FAIL',
    notes,
    data: { ours: o, raw: r },
  });
}

// ---------------------------------------------------------------- build, run, report

async function build() {
  if (!opts.build) return 'skipped (--no-build)';
  log('building dist/ (npm run build)');
  try {
    await run('npm', ['run', 'build', '--silent'], { cwd: ROOT, maxBuffer: 16 << 20 });
    return 'ok';
  } catch (err) {
    // tsc still emits JavaScript with type errors; a transport that cannot load is reported unavailable.
    const out =
      String(/** @type {{ stdout?: string }} */ (err).stdout ?? '') +
      String(/** @type {{ stderr?: string }} */ (err).stderr ?? '');
    const errors = out.split('\n').filter((l) => /error TS\d+/.test(l));
    log(`build reported ${errors.length} type errors; continuing with what tsc emitted. First ones:`);
    for (const l of errors.slice(0, 8)) log(`  ${l}`);
    return `type errors (${errors.length}); ran on what tsc emitted`;
  }
}

/** @param {string} s @param {number} w */
const pad = (s, w) => (s.length >= w ? s : s + ' '.repeat(w - s.length));

function printTable() {
  const head = ['Line', 'coalmine', 'raw loop', 'extra peer', 'Ratio', 'Target', 'Result'];
  const body = rows.map((r) => [r.line, r.ours, r.peer, r.extra, r.ratio, r.target, r.status]);
  const widths = head.map((h, i) =>
    Math.min(90, Math.max(h.length, ...body.map((b) => (b[i] ?? '').length))),
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
  // The bench only hands out work and waits: it stays on core 1, with the relay and load helpers.
  if (TASKSET && CPUS >= 2)
    await run(TASKSET, ['-a', '-p', '-c', '1', String(process.pid)]).catch(() => undefined);
  if (!TASKSET || CPUS < 2) log('no taskset or a single core: nothing is pinned');
  const buildStatus = await build();
  const kinds = KINDS.filter((k) => opts.only.includes(k));
  for (const section of SECTIONS) {
    if (!opts.sections.includes(section)) continue;
    log(`== ${section}`);
    const list = section === 'flows' ? FLOW_KINDS.filter((k) => opts.only.includes(k)) : kinds;
    for (const kind of list) {
      try {
        if (section === 'rate') await sectionRate(/** @type {Kind} */ (kind));
        else if (section === 'latency') await sectionLatency(/** @type {Kind} */ (kind));
        else await sectionFlows(/** @type {'memory' | 'redis'} */ (kind));
      } catch (err) {
        unavailableRow(section, `${kind}`, String(/** @type {Error} */ (err)?.message ?? err), 'ERROR');
      }
    }
  }
  if (relay) await killPid(relay.proc);
  await killAll();
  printTable();

  const outDir = join(ROOT, 'bench/out');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `messaging-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  const report = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    host: { cpus: CPUS, cpuModel: cpus()[0]?.model, node: process.version, taskset: TASKSET ?? null },
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

await runBench(main);
