// @ts-check
/**
 * The `spread` section's child processes (argv: <mode> <json args>), results over IPC:
 *
 * - `agent`: the real Agent from dist/ (config parsed by the agent's parser, ProbeMetrics, its
 *   Scheduler and lateness histogram) running `targets` HTTP targets for `seconds`, optionally stalled
 *   once on purpose (a synchronous busy loop, as a long GC or a slow scrape would) to see what the
 *   scheduler does when many runs fall due together.
 * - `blackbox`: drives blackbox_exporter's /probe as Prometheus would: one scrape per target per
 *   interval, on the same Scheduler and so the same stable per-target offsets as ours, each request
 *   carrying X-Prometheus-Scrape-Timeout-Seconds so the exporter's deadline equals ours.
 *
 * Both record, per target, every slot that fell due (run, or skipped and why) so the bench can check
 * that every due slot is accounted for, and every launch time, for the starts-per-10-ms figure.
 */
import { Agent as HttpAgent, get } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

const [mode = '', rawArgs = '{}'] = process.argv.slice(2);
/** @type {any} */
const args = JSON.parse(rawArgs);
const DIST = new URL('../../dist/', import.meta.url);

/** @param {object} m @returns {Promise<void>} */
const send = (m) =>
  new Promise((resolve) => (process.send ? process.send(m, undefined, {}, () => resolve()) : resolve()));
/** @param {string} msg */
const log = (msg) => process.stderr.write(`[spread ${mode} ${process.pid}] ${msg}\n`);
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** @typedef {{ name: string, url: string }} Target */
/** @type {Target[]} */
const targets = args.targets;

/**
 * Per-target bookkeeping shared by both modes: lateness events, launches, skips and outcomes.
 */
function ledger() {
  /** @type {number[]} */ const lateness = [];
  /** @type {number[]} */ const launches = [];
  /** @type {Map<string, number>} */ const slotsById = new Map();
  /** @type {Record<string, number>} */ const skipped = { overlap: 0, stalled: 0 };
  /** @type {Record<string, number>} */ const outcomes = {};
  /** @type {number[]} */ const durations = [];
  let finished = 0;
  const t0 = performance.now();
  return {
    t0,
    events: {
      /** @param {string} id @param {number} s */
      lateness(id, s) {
        lateness.push(s);
        launches.push(performance.now() - t0);
        slotsById.set(id, (slotsById.get(id) ?? 0) + 1);
      },
      /** @param {string} id @param {'overlap' | 'stalled'} reason */
      skipped(id, reason) {
        skipped[reason] = (skipped[reason] ?? 0) + 1;
        // An overlap is reported right after its slot's lateness: that slot launched nothing.
        if (reason === 'overlap') launches.pop();
        else slotsById.set(id, (slotsById.get(id) ?? 0) + 1);
      },
    },
    /** @param {string} outcome @param {number} seconds */
    outcome(outcome, seconds) {
      finished++;
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      durations.push(seconds);
    },
    /** @param {number} startMs @param {number} stopMs in performance.now() time */
    report(startMs, stopMs) {
      return {
        lateness,
        launches,
        slotsById: Object.fromEntries(slotsById),
        skipped,
        outcomes,
        durations,
        finished,
        windowMs: [startMs - t0, stopMs - t0],
      };
    },
  };
}

/** Burns the CPU for `ms` on the event loop, as a long GC pause or a slow synchronous job would. */
function stall(ms) {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

/** @param {string} path */
const dist = (path) => import(new URL(path, DIST).href);

async function runAgent() {
  const [{ Agent }, { parseConfig }] = await Promise.all([dist('agent/agent.js'), dist('config/load.js')]);
  const lines = [`interval: ${args.intervalMs}ms`, `timeout: ${args.timeoutMs}ms`, 'targets:'];
  for (const t of targets) lines.push(`  - name: ${t.name}`, '    kind: http', `    target: ${t.url}`);
  const config = parseConfig(lines.join('\n') + '\n', 'spread.yaml', {});
  const book = ledger();
  const agent = new Agent(config, {
    scheduler: book.events,
    onObservation: (/** @type {any} */ o) =>
      book.outcome(o.result.ok ? 'ok' : o.result.error.code, Number(o.result.durationNs) / 1e9),
  });
  const cpu0 = cpuSeconds();
  const start = performance.now();
  agent.start();
  /** @type {number | undefined} */
  let stalledAt;
  if (args.stallMs > 0) {
    await sleep(args.stallAtS * 1000);
    stalledAt = performance.now() - book.t0;
    log(`stalling the event loop for ${args.stallMs} ms`);
    stall(args.stallMs);
    await sleep(args.seconds * 1000 - (performance.now() - start));
  } else {
    await sleep(args.seconds * 1000);
  }
  const stop = performance.now();
  // Stop scheduling and let the runs in flight report before closing: a closed agent observes nothing.
  agent.scheduler.stop();
  await agent.scheduler.idle();
  await agent.close();
  const cpu = cpuSeconds() - cpu0;
  await send({
    type: 'result',
    ...book.report(start, stop),
    stalledAtMs: stalledAt,
    stallMs: args.stallMs,
    cpuSeconds: cpu,
    offsets: await offsetsOf(),
  });
}

/** Each target's start offset as our scheduler gives it, so the bench can count the due slots. */
async function offsetsOf() {
  const { startOffsetMs } = await dist('core/scheduler.js');
  return Object.fromEntries(targets.map((t) => [t.name, startOffsetMs(t.name, args.intervalMs)]));
}

/**
 * GET one /probe and classify it: ok, timeout (the exporter gave up at its deadline), failed, or
 * client-timeout (no answer within the deadline plus 2 s).
 * @param {string} url @param {HttpAgent} agent @param {number} deadlineS
 * @returns {Promise<{ outcome: string, seconds: number }>}
 */
function scrape(url, agent, deadlineS) {
  return new Promise((resolve) => {
    const req = get(
      url,
      // As Prometheus sends it; blackbox_exporter's deadline is this minus its 0.5 s offset.
      { agent, headers: { 'x-prometheus-scrape-timeout-seconds': String(deadlineS + 0.5) } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => {
          const success = /^probe_success 1$/m.exec(body) !== null;
          const d = /^probe_duration_seconds (\S+)$/m.exec(body);
          const seconds = d ? Number(d[1]) : NaN;
          if (success) resolve({ outcome: 'ok', seconds });
          else resolve({ outcome: seconds >= deadlineS * 0.95 ? 'timeout' : 'failed', seconds });
        });
        res.on('error', () => resolve({ outcome: 'client-error', seconds: NaN }));
      },
    );
    req.setTimeout((deadlineS + 2) * 1000, () => {
      req.destroy();
      resolve({ outcome: 'client-timeout', seconds: NaN });
    });
    req.on('error', () => resolve({ outcome: 'client-error', seconds: NaN }));
  });
}

async function runBlackbox() {
  const [{ Scheduler }, { systemClock }] = await Promise.all([
    dist('core/scheduler.js'),
    dist('core/clock.js'),
  ]);
  const book = ledger();
  // One kept-alive connection per scrape in flight, as Prometheus keeps one per target.
  const agent = new HttpAgent({ keepAlive: true, maxSockets: Infinity });
  const sched = new Scheduler(systemClock, book.events);
  const deadlineS = args.timeoutMs / 1000;
  for (const t of targets) {
    const url = `${args.base}/probe?module=http_2xx&target=${encodeURIComponent(t.url)}`;
    sched.add({
      id: t.name,
      intervalMs: args.intervalMs,
      run: async () => {
        const r = await scrape(url, agent, deadlineS);
        book.outcome(r.outcome, r.seconds);
      },
    });
  }
  const cpu0 = cpuSeconds();
  const start = performance.now();
  sched.start();
  await sleep(args.seconds * 1000);
  const stop = performance.now();
  sched.stop();
  await sched.idle();
  agent.destroy();
  await send({
    type: 'result',
    ...book.report(start, stop),
    cpuSeconds: cpuSeconds() - cpu0,
    offsets: await offsetsOf(),
  });
}

/** @type {Record<string, () => Promise<void>>} */
const modes = { agent: runAgent, blackbox: runBlackbox };
const run = modes[mode];
if (!run) {
  log(`unknown mode ${mode}`);
  process.exit(2);
}
process.on('disconnect', () => process.exit(0));
try {
  await run();
} catch (err) {
  await send({ type: 'error', message: String(/** @type {Error} */ (err)?.stack ?? err) });
}
process.disconnect?.();
