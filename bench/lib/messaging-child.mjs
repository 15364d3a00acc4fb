// @ts-check
/**
 * Worker processes of bench/messaging.mjs, one mode each (argv: mode, JSON args), answering over IPC:
 *
 *   relay    the WebSocket relay from dist/, as a broker process of its own; sends {type:'ready', url}
 *   ladder   one side ('ours' = Canary → Coalminer from dist/, 'raw' = the client library's own loop) at
 *            each rate in turn for `stepSeconds`, until a step fails (unless keepGoing); sends
 *            {type:'step', ...} per step and {type:'result', steps} or {type:'result', unavailable}
 *   flows    `flows` canary→coalminer pairs at 1 msg/s each (or the raw equivalent), CPU over
 *            `measureSeconds` minus an idle baseline of the same process; sends {type:'result', ...}
 *
 * Progress goes to stderr. Everything opened is closed before the result is sent.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { rawClient } from './messaging-raw.mjs';

const [mode = '', argsJson = '{}'] = process.argv.slice(2);
const args = JSON.parse(argsJson);
const DIST = new URL('../../dist/', import.meta.url);
/** @param {string} msg */
const log = (msg) => process.stderr.write(`[bench ${mode} ${args.kind ?? ''} ${args.side ?? ''}] ${msg}\n`);
/** @param {object} m */
const send = (m) => new Promise((r) => (process.send ? process.send(m, () => r(undefined)) : r(undefined)));
/** @param {unknown} err */
const why = (err) => String(/** @type {Error} */ (err)?.message ?? err).split('\n')[0];

/** Milliseconds → seconds for quantiles of a sorted Float64Array. */
function quantiles(/** @type {Float64Array} */ ms) {
  const s = ms.slice().sort();
  const q = (/** @type {number} */ p) =>
    s.length ? /** @type {number} */ (s[Math.min(s.length - 1, Math.floor(p * s.length))]) / 1e3 : NaN;
  return {
    count: s.length,
    p50: q(0.5),
    p99: q(0.99),
    max: s.length ? /** @type {number} */ (s[s.length - 1]) / 1e3 : NaN,
  };
}

/** CPU seconds and event-loop utilisation over a stretch of this process's life. */
function meter() {
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  return () => {
    const c = process.cpuUsage(cpu0);
    return {
      seconds: (performance.now() - t0) / 1e3,
      cpuSeconds: (c.user + c.system) / 1e6,
      elu: performance.eventLoopUtilization(elu0).utilization,
    };
  };
}

/** Waits while `progress()` keeps moving and `done()` is false; gives up after `quietMs` without progress. */
async function drain(
  /** @type {() => boolean} */ done,
  /** @type {() => number} */ progress,
  quietMs = 2500,
  capMs = 20_000,
) {
  const start = Date.now();
  let last = progress();
  let lastMove = Date.now();
  while (!done() && Date.now() - start < capMs && Date.now() - lastMove < quietMs) {
    await sleep(50);
    const p = progress();
    if (p !== last) [last, lastMove] = [p, Date.now()];
  }
}

// ---------------------------------------------------------------- ours

async function loadOurs() {
  const imp = async (/** @type {string} */ p) => import(new URL(p, DIST).href);
  const [{ createTransport }, { Canary }, { Coalminer }, envelope] = await Promise.all([
    imp('transports/registry.js'),
    imp('messaging/canary.js'),
    imp('messaging/coalminer.js'),
    imp('messaging/envelope.js'),
  ]);
  return { createTransport, Canary, Coalminer, envelope };
}

/** Two connected transports (canary's, coalminer's), as `coalmine pair` opens them. */
async function ourTransports(/** @type {any} */ ours, /** @type {string} */ url) {
  /** @type {any[]} */
  const opened = [];
  try {
    for (const name of ['bench-canary', 'bench-coalminer']) {
      const t = await ours.createTransport(url, { clientName: `${name}-${process.pid}` });
      opened.push(t);
      await t.connect(AbortSignal.timeout(15_000));
    }
  } catch (err) {
    await Promise.allSettled(opened.map((t) => t.close()));
    throw err;
  }
  return /** @type {[any, any]} */ (opened);
}

/**
 * One rate step of Canary → Coalminer: fresh names (so fresh flows), the same two connections.
 * @param {any} ours @param {any} pub @param {any} sub @param {string} prefix @param {number} step @param {number} rate
 * @param {number} [seconds]
 */
async function oursStep(ours, pub, sub, prefix, step, rate, seconds = args.stepSeconds) {
  const canaryName = `c${step}`;
  const minerName = `m${step}`;
  let canary;
  try {
    canary = new ours.Canary({
      name: canaryName,
      transport: pub,
      prefix,
      ratePerSecond: rate,
      maxLagMs: args.maxLagMs,
      leaseMs: 120_000,
    });
  } catch (err) {
    return { rate, pass: false, reason: `the Canary refuses this rate: ${why(err)}` };
  }
  const coalminer = new ours.Coalminer({
    name: minerName,
    transport: sub,
    register: [canaryName],
    prefix,
    leaseMs: 120_000,
    clockSyncIntervalMs: 1000,
    sequence: { lossTimeoutMs: args.lossTimeoutMs },
  });
  try {
    await canary.start();
    await coalminer.start();
    const deadline = Date.now() + 30_000;
    while (!coalminer.isConfirmedBy(canaryName) && Date.now() < deadline) await sleep(10);
    if (!coalminer.isConfirmedBy(canaryName))
      return { rate, pass: false, reason: 'the coalminer got no confirm within 30 s' };
    const m = meter();
    await sleep(seconds * 1000);
    await canary.stop();
    const sending = m();
    const flowStats = () => canary.stats().get(minerName);
    // flowCounts(), not reports(): polled every 50 ms, and reports() summarises every histogram.
    const counts = () =>
      coalminer.flowCounts().find((/** @type {any} */ r) => r.canary === canaryName)?.counts;
    // Read once every attempted ping is accounted for: every publish settled, the canary's last word
    // (how far it got, which publishes failed) arrived, so the coalminer expects all it attempted, and
    // every gap judged (arrived or, after the loss timeout, lost). Reading when received >= sent, as
    // this did, read a step with failed publishes before that word arrived (failed pings that arrived
    // in doubt make received reach sent early), and its tail showed as attempted but not accounted for.
    // Every failure the canary counted is news the coalminer took (send-failed, or failed in doubt and
    // arrived) once its last word is in: the word for publishes that settle late follows them.
    const settledAll = () => {
      coalminer.tick();
      const c = counts();
      const s = flowStats();
      return (
        s !== undefined &&
        s.pending === 0 &&
        c?.expected === s.attempted &&
        c.inFlight === 0 &&
        c.sendFailed + c.sendFailedArrived >= s.failed
      );
    };
    const progress = () => {
      const c = counts();
      return c ? c.expected + c.received + c.lost + c.sendFailed + c.sendFailedArrived + c.droppedLocally : 0;
    };
    // Gaps are judged after the loss timeout: quiet for longer than that is no progress.
    await drain(settledAll, progress, Math.max(2500, args.lossTimeoutMs + 1000));
    coalminer.tick();
    const all = m();
    const s = flowStats() ?? {
      due: 0,
      behind: 0,
      behindSeconds: 0,
      attempted: 0,
      sent: 0,
      failed: 0,
      pending: 0,
      errors: {},
    };
    const r = coalminer.reports().find((/** @type {any} */ x) => x.canary === canaryName);
    const c = r?.counts ?? {
      expected: 0,
      received: 0,
      lost: 0,
      inFlight: 0,
      duplicated: 0,
      reordered: 0,
      sendFailed: 0,
      droppedLocally: 0,
      late: 0,
      stale: 0,
    };
    const lat = r?.latency ?? { p50: NaN, p99: NaN, max: NaN };
    const latSent = r?.latencyFromSent ?? { p50: NaN, p99: NaN };
    const res = {
      rate,
      due: s.due,
      attempted: s.attempted,
      behind: s.behind,
      behindSeconds: s.behindSeconds,
      sent: s.sent,
      sendFailed: s.failed,
      pending: s.pending,
      sendErrors: s.errors,
      expected: c.expected,
      received: c.received,
      lost: c.lost,
      inFlight: c.inFlight,
      duplicated: c.duplicated,
      reordered: c.reordered,
      droppedLocally: c.droppedLocally,
      late: c.late,
      stale: c.stale,
      receivedSendFailed: c.sendFailed,
      // Of received: pings whose publish failed at the canary (in doubt) but that arrived.
      sendFailedArrived: c.sendFailedArrived ?? 0,
      // Each ping the canary attempted is in exactly one of the coalminer's states, or it is not accounted.
      unaccounted: s.attempted - (c.received + c.inFlight + c.lost + c.sendFailed + c.droppedLocally),
      achieved: s.attempted / sending.seconds,
      latency: { p50: lat.p50, p99: lat.p99, max: lat.max },
      latencyFromSent: { p50: latSent.p50, p99: latSent.p99 },
      cpu: sending.cpuSeconds / sending.seconds,
      // CPU of the whole process (both ends) per message attempted: steadier than pass/fail on a busy machine.
      cpuPerMessage: sending.cpuSeconds / Math.max(1, s.attempted),
      elu: sending.elu,
      drainSeconds: all.seconds - sending.seconds,
    };
    return { ...res, ...judge(res) };
  } finally {
    await coalminer.stop().catch(() => undefined);
    await canary.stop().catch(() => undefined);
  }
}

/** Share of the due messages a step must have attempted to pass (the rest were behind schedule). */
const MIN_ATTEMPTED = 0.99;

/**
 * Pass = it did the work and accounted for all of it: at least 99 % of the due messages attempted, due =
 * attempted + behind and attempted = sent + failed + pending exactly, every sent message received once
 * (nothing lost, in flight, duplicated, dropped or unaccounted), no send error, p99 from the intended send
 * time within the limit. The same rules for ours and the raw loop.
 * @param {{ due: number, attempted: number, behind: number, pending: number, sendFailed: number, received: number, sent: number, lost: number, inFlight: number, duplicated: number, unaccounted: number, droppedLocally?: number, sendFailedArrived?: number, expected?: number, latency: { p99: number }, sendErrors: Record<string, number> }} r
 */
function judge(r) {
  const reasons = [];
  if (!(r.due > 0)) reasons.push('nothing fell due');
  if (r.attempted < MIN_ATTEMPTED * r.due)
    reasons.push(
      `attempted ${r.attempted} of ${r.due} due (${((r.attempted / r.due) * 100).toFixed(1)}% < ${MIN_ATTEMPTED * 100}%; ${r.behind} behind schedule)`,
    );
  if (r.due !== r.attempted + r.behind)
    reasons.push(`due ${r.due} != attempted ${r.attempted} + behind ${r.behind}`);
  if (r.attempted !== r.sent + r.sendFailed + r.pending)
    reasons.push(
      `attempted ${r.attempted} != sent ${r.sent} + failed ${r.sendFailed} + pending ${r.pending}`,
    );
  if (r.pending > 0) reasons.push(`${r.pending} publishes never settled`);
  if (r.sendFailed > 0)
    reasons.push(
      `${r.sendFailed} send errors (${Object.entries(r.sendErrors)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
    );
  // A publish that failed in doubt and arrived is received, not sent.
  const arrived = r.sent + (r.sendFailedArrived ?? 0);
  if (r.received !== arrived)
    reasons.push(
      `received ${r.received} of ${r.sent} sent` +
        (r.sendFailedArrived ? ` + ${r.sendFailedArrived} failed in doubt that arrived` : ''),
    );
  if (r.lost > 0) reasons.push(`${r.lost} lost`);
  if (r.inFlight > 0) reasons.push(`${r.inFlight} still in flight`);
  if (r.duplicated > 0) reasons.push(`${r.duplicated} duplicated`);
  if ((r.droppedLocally ?? 0) > 0) reasons.push(`${r.droppedLocally} dropped locally`);
  if (r.expected !== undefined && r.expected !== r.attempted)
    reasons.push(`the coalminer expects ${r.expected} of ${r.attempted} attempted`);
  if (r.unaccounted !== 0) reasons.push(`${r.unaccounted} attempted but not accounted for`);
  if (!(r.latency.p99 <= args.p99LimitMs / 1e3))
    reasons.push(`p99 from intended send ${(r.latency.p99 * 1e3).toFixed(0)} ms > ${args.p99LimitMs} ms`);
  return { pass: reasons.length === 0, reason: reasons.join('; ') };
}

// ---------------------------------------------------------------- raw

/**
 * The raw loop's payload: f64 step, seq, intended ms, sent ms (performance.now, same process), padded to
 * the size of our ping envelope; base64 text on text-only systems.
 */
const HEAD = 32;

/** @param {import('./messaging-raw.mjs').RawClient} client @param {number} size */
function codec(client, size) {
  const buf = Buffer.alloc(Math.max(HEAD, size));
  return {
    /** @param {number} step @param {number} seq @param {number} intended @param {number} sent */
    encode(step, seq, intended, sent) {
      buf.writeDoubleLE(step, 0);
      buf.writeDoubleLE(seq, 8);
      buf.writeDoubleLE(intended, 16);
      buf.writeDoubleLE(sent, 24);
      return client.textOnly ? buf.toString('base64') : Buffer.from(buf);
    },
    /** @param {Uint8Array} p */
    decode(p) {
      const b = client.textOnly
        ? Buffer.from(Buffer.from(p).toString('latin1'), 'base64')
        : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
      if (b.length < HEAD) return undefined;
      return {
        step: b.readDoubleLE(0),
        seq: b.readDoubleLE(8),
        intended: b.readDoubleLE(16),
        sent: b.readDoubleLE(24),
      };
    },
  };
}

/** The receiving side of the raw loop: counts and latencies of the current step. */
class RawReceiver {
  step = -1;
  received = 0;
  duplicated = 0;
  stray = 0;
  seen = new Uint8Array(0);
  fromIntended = new Float64Array(0);
  fromSent = new Float64Array(0);
  /** @param {ReturnType<typeof codec>} c */
  constructor(c) {
    this.c = c;
  }
  /** @param {number} step @param {number} n */
  reset(step, n) {
    Object.assign(this, { step, received: 0, duplicated: 0, stray: 0 });
    this.seen = new Uint8Array(n);
    this.fromIntended = new Float64Array(n);
    this.fromSent = new Float64Array(n);
  }
  /** @param {Uint8Array} p */
  onMessage = (p) => {
    const now = performance.now();
    const m = this.c.decode(p);
    if (!m || m.step !== this.step || m.seq >= this.seen.length) {
      this.stray++;
      return;
    }
    if (this.seen[m.seq]) {
      this.duplicated++;
      return;
    }
    this.seen[m.seq] = 1;
    this.fromIntended[this.received] = now - m.intended;
    this.fromSent[this.received] = now - m.sent;
    this.received++;
  };
}

/**
 * Open-loop sender like the Canary's: message k is due at t0 + k × interval for `seconds`; due messages go
 * out in one batch per timer tick (at most 20,000; when still behind, the next batch follows right after
 * pending I/O, as the Canary's does); a slot more than maxLagMs late is skipped and counted `stalled`; more
 * than 10,000 publishes awaiting the system at once count `backpressure`. At the end it stops like
 * Canary.stop(): one last batch of what fell due, and whatever is left was due but never attempted
 * (behind schedule). So due = attempted + behind, attempted = sent + failed + pending, as the Canary counts.
 * @param {import('./messaging-raw.mjs').RawClient} client @param {string} channel @param {ReturnType<typeof codec>} c
 * @param {number} step @param {number} rate @param {number} seconds
 */
function rawSend(client, channel, c, step, rate, seconds) {
  const n = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const t0 = performance.now() + 1;
  const end = t0 + n * interval;
  const st = {
    due: n,
    attempted: 0,
    behind: 0,
    behindSeconds: 0,
    sent: 0,
    failed: 0,
    pending: 0,
    errors: /** @type {Record<string, number>} */ ({}),
  };
  const fail = (/** @type {string} */ k, count = 1) => {
    st.errors[k] = (st.errors[k] ?? 0) + count;
    st.failed += count;
  };
  const ok = () => {
    st.pending--;
    st.sent++;
  };
  const failed = (/** @type {unknown} */ err) => {
    st.pending--;
    fail(why(err));
  };
  let next = 0;
  return {
    st,
    done: new Promise((resolve) => {
      const tick = () => {
        const now = performance.now();
        let batch = 0;
        while (next < n && t0 + next * interval <= now && batch < 20_000) {
          const intended = t0 + next * interval;
          st.attempted++;
          if (now - intended > args.maxLagMs) fail('stalled');
          else if (st.pending >= 10_000) fail('backpressure');
          else {
            let p;
            try {
              p = client.publish(channel, c.encode(step, next, intended, performance.now()));
            } catch (err) {
              fail(why(err));
            }
            if (p && typeof p.then === 'function') {
              st.pending++;
              p.then(ok, failed);
            } else if (p === undefined) st.sent++;
          }
          next++;
          batch++;
        }
        if (next >= n || now >= end) {
          // The end of the step: what is left fell due and was never attempted.
          st.behind = n - next;
          st.behindSeconds = st.behind > 0 ? (now - (t0 + next * interval)) / 1e3 : 0;
          return resolve(undefined);
        }
        if (t0 + next * interval <= performance.now()) setImmediate(tick);
        else setTimeout(tick, Math.max(0, Math.floor(t0 + next * interval - performance.now())));
      };
      tick();
    }),
  };
}

/** Publishes markers until the subscription demonstrably receives (Kafka's group join, queue binding...). */
async function rawReady(
  /** @type {any} */ client,
  /** @type {string} */ channel,
  /** @type {RawReceiver} */ rx,
  /** @type {ReturnType<typeof codec>} */ c,
) {
  rx.reset(-2, 1);
  const deadline = Date.now() + 30_000;
  while (rx.received === 0 && Date.now() < deadline) {
    await Promise.resolve(
      client.publish(channel, c.encode(-2, 0, performance.now(), performance.now())),
    ).catch(() => undefined);
    await sleep(200);
  }
  if (rx.received === 0) throw new Error(`the raw subscription to ${channel} received nothing within 30 s`);
}

/**
 * @param {any} client @param {string} channel @param {RawReceiver} rx @param {ReturnType<typeof codec>} c
 * @param {number} step @param {number} rate @param {number} [seconds]
 */
async function rawStep(client, channel, rx, c, step, rate, seconds = args.stepSeconds) {
  const n = Math.round(rate * seconds);
  rx.reset(step, n);
  const m = meter();
  const s = rawSend(client, channel, c, step, rate, seconds);
  await s.done;
  const sending = m();
  await drain(
    () => s.st.pending === 0 && rx.received >= s.st.sent,
    () => rx.received + s.st.sent,
  );
  const st = s.st;
  const lat = quantiles(rx.fromIntended.subarray(0, rx.received));
  const latSent = quantiles(rx.fromSent.subarray(0, rx.received));
  // After the drain, a sent message that did not arrive is lost: nothing else can explain it.
  const lost = Math.max(0, st.sent - rx.received);
  const res = {
    rate,
    due: st.due,
    attempted: st.attempted,
    behind: st.behind,
    behindSeconds: st.behindSeconds,
    sent: st.sent,
    sendFailed: st.failed,
    pending: st.pending,
    sendErrors: st.errors,
    received: rx.received,
    lost,
    inFlight: 0,
    duplicated: rx.duplicated,
    stray: rx.stray,
    unaccounted: st.sent - rx.received - lost,
    achieved: st.attempted / sending.seconds,
    latency: lat,
    latencyFromSent: latSent,
    cpu: sending.cpuSeconds / sending.seconds,
    cpuPerMessage: sending.cpuSeconds / Math.max(1, st.attempted),
    elu: sending.elu,
    drainSeconds: m().seconds - sending.seconds,
  };
  return { ...res, ...judge(res) };
}

// ---------------------------------------------------------------- modes

/**
 * Connects one side and returns how to run a step on it and how to close it.
 * @returns {Promise<{ runStep: (step: number, rate: number, seconds: number) => Promise<any>, close: () => Promise<void> }>}
 */
async function setUp() {
  const prefix = `bench${process.pid}`;
  /** @type {() => Promise<void>} */
  let close = async () => {};
  try {
    const ours = await loadOurs();
    const sample = ours.envelope.encode(
      {
        type: 'ping',
        canary: 'c0',
        coalminer: 'm0',
        runId: 1n,
        seq: 1n,
        intendedNs: 1n,
        sentNs: 1n,
        intervalNs: 1n,
      },
      false,
    );
    if (args.side === 'ours') {
      const [pub, sub] = await ourTransports(ours, args.url);
      close = async () => void (await Promise.allSettled([pub.close(), sub.close()]));
      return {
        close,
        runStep: (step, rate, seconds) => oursStep(ours, pub, sub, prefix, step, rate, seconds),
      };
    }
    const client = await rawClient(args.url, prefix);
    close = () => client.close();
    const c = codec(client, sample.length);
    const rx = new RawReceiver(c);
    const channel = `${prefix}.raw`;
    await client.subscribe(channel, rx.onMessage);
    await rawReady(client, channel, rx, c);
    return { close, runStep: (step, rate, seconds) => rawStep(client, channel, rx, c, step, rate, seconds) };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

/** @param {any} r */
function stepLine(r) {
  return (
    `  ${r.pass ? 'pass' : 'FAIL'} ${r.rate}/s: due ${r.due ?? '-'} attempted ${r.attempted ?? '-'} behind ${r.behind ?? '-'} ` +
    `sent ${r.sent ?? '-'} received ${r.received ?? '-'} failed ${r.sendFailed ?? '-'} ` +
    `p99 ${r.latency ? (r.latency.p99 * 1e3).toFixed(1) + ' ms' : '-'} cpu ${r.cpu !== undefined ? Math.round(r.cpu * 100) + '%' : '-'}` +
    ` (${r.cpuPerMessage !== undefined ? (r.cpuPerMessage * 1e6).toFixed(2) : '-'} µs/message)` +
    `${r.reason ? ` (${r.reason})` : ''}`
  );
}

async function ladder() {
  /** @type {any[]} */
  const steps = [];
  let side;
  try {
    side = await setUp();
  } catch (err) {
    await send({ type: 'result', unavailable: why(err) });
    return;
  }
  try {
    for (const [i, rate] of /** @type {number[]} */ (args.rates).entries()) {
      log(`step ${rate}/s for ${args.stepSeconds} s`);
      const r = await side.runStep(i + 1, rate, args.stepSeconds);
      steps.push(r);
      log(stepLine(r));
      await send({ type: 'step', step: r });
      if (!r.pass && !args.keepGoing) break;
    }
  } catch (err) {
    steps.push({ rate: NaN, pass: false, reason: `error: ${why(err)}` });
  } finally {
    await side.close().catch(() => undefined);
  }
  await send({ type: 'result', steps });
}

/**
 * Steps on demand, so the bench can alternate two sides round by round (the same load for both): sends
 * {type:'ready'} (or {type:'result', unavailable}), then runs each {type:'run', step, rate, seconds} and
 * answers {type:'step', step}; {type:'close'} closes and answers {type:'result'}.
 */
async function rounds() {
  let side;
  try {
    side = await setUp();
  } catch (err) {
    await send({ type: 'result', unavailable: why(err) });
    return;
  }
  await send({ type: 'ready' });
  /** @type {Promise<void>} */
  let chain = Promise.resolve();
  await new Promise((resolve) => {
    process.on('message', (/** @type {any} */ m) => {
      chain = chain.then(async () => {
        if (m?.type === 'run') {
          const r = await side.runStep(m.step, m.rate, m.seconds).catch((err) => ({
            rate: m.rate,
            pass: false,
            reason: `error: ${why(err)}`,
          }));
          log(stepLine(r));
          await send({ type: 'step', step: r });
        } else if (m?.type === 'close') {
          await side.close().catch(() => undefined);
          await send({ type: 'result' });
          resolve(undefined);
        }
      });
    });
  });
}

/**
 * `flows` canary→coalminer pairs at 1/s (ours: one Canary, `flows` Coalminers on one shared transport;
 * raw: `flows` channels, one publish per channel per second, one subscription each).
 */
async function flows() {
  const prefix = `bench${process.pid}`;
  const n = args.flows;
  /** @type {() => Promise<void>} */
  let close = async () => {};
  try {
    let idle;
    /** @type {() => Promise<void>} */
    let stop;
    /** @type {() => { sent: number, received: number, lost: number, failed: number, p50: number, p99: number }} */
    let counts;
    if (args.side === 'ours') {
      const ours = await loadOurs();
      const [pub, sub] = await ourTransports(ours, args.url);
      close = async () => void (await Promise.allSettled([pub.close(), sub.close()]));
      idle = await idleBaseline();
      const canary = new ours.Canary({ name: 'flows', transport: pub, prefix, ratePerSecond: 1 });
      const miners = Array.from(
        { length: n },
        (_, i) => new ours.Coalminer({ name: `m${i}`, transport: sub, register: ['flows'], prefix }),
      );
      await canary.start();
      for (const c of miners) await c.start();
      const deadline = Date.now() + 30_000;
      while (miners.some((c) => !c.isConfirmedBy('flows')) && Date.now() < deadline) await sleep(50);
      const confirmed = miners.filter((c) => c.isConfirmedBy('flows')).length;
      if (confirmed < n) throw new Error(`only ${confirmed} of ${n} coalminers registered within 30 s`);
      stop = async () => {
        await canary.stop();
        await sleep(args.lossTimeoutMs + 500);
        for (const c of miners) await c.stop();
      };
      counts = () => {
        let sent = 0,
          failed = 0,
          received = 0,
          lost = 0;
        for (const s of canary.stats().values()) [sent, failed] = [sent + s.sent, failed + s.failed];
        const p50s = [],
          p99s = [];
        for (const c of miners)
          for (const r of c.reports()) {
            received += r.counts.received;
            lost += r.counts.lost;
            p50s.push(r.latency.p50);
            p99s.push(r.latency.p99);
          }
        return { sent, received, lost, failed, p50: median(p50s), p99: Math.max(...p99s) };
      };
    } else {
      const client = await rawClient(args.url, prefix);
      close = () => client.close();
      idle = await idleBaseline();
      const c = codec(client, 80);
      let sent = 0,
        received = 0,
        failed = 0;
      /** @type {number[]} */
      const lat = [];
      for (let i = 0; i < n; i++)
        await client.subscribe(`${prefix}.f${i}`, (p) => {
          const m = c.decode(p);
          if (!m) return;
          received++;
          lat.push(performance.now() - m.intended);
        });
      /** @type {NodeJS.Timeout[]} */
      const timers = [];
      // Phases spread over the second, as registrations spread a canary's flows.
      for (let i = 0; i < n; i++)
        timers.push(
          setTimeout(
            () => {
              let seq = 0;
              const fire = () => {
                const now = performance.now();
                const p = client.publish(`${prefix}.f${i}`, c.encode(0, seq++, now, now));
                if (p && typeof p.then === 'function')
                  p.then(
                    () => sent++,
                    () => failed++,
                  );
                else sent++;
              };
              fire();
              timers.push(setInterval(fire, 1000));
            },
            (i * 1000) / n,
          ),
        );
      stop = async () => {
        for (const t of timers) clearTimeout(t);
        await sleep(args.lossTimeoutMs + 500);
      };
      counts = () => ({
        sent,
        received,
        lost: Math.max(0, sent - received),
        failed,
        p50: quantiles(Float64Array.from(lat)).p50,
        p99: quantiles(Float64Array.from(lat)).p99,
      });
    }
    log(`warming up ${args.warmSeconds} s, then measuring ${args.measureSeconds} s`);
    await sleep(args.warmSeconds * 1000);
    const m = meter();
    await sleep(args.measureSeconds * 1000);
    const busy = m();
    await stop();
    const cnt = counts();
    await close();
    await send({
      type: 'result',
      idle,
      busy,
      cpuShare: busy.cpuSeconds / busy.seconds - idle.cpuSeconds / idle.seconds,
      ...cnt,
    });
  } catch (err) {
    await close().catch(() => undefined);
    await send({ type: 'result', unavailable: why(err) });
  }
}

/** CPU of this process, connected but idle, before any flow exists. */
async function idleBaseline() {
  await sleep(1000);
  const m = meter();
  await sleep(args.idleSeconds * 1000);
  return m();
}

/** @param {number[]} v */
function median(v) {
  const s = v.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? /** @type {number} */ (s[Math.floor(s.length / 2)]) : NaN;
}

async function relay() {
  const { startRelay } = await import(new URL('transports/websocket/relay.js', DIST).href);
  const r = await startRelay({ host: '127.0.0.1', port: 0 });
  await send({ type: 'ready', url: r.url });
  process.on('SIGTERM', () => void r.close().then(() => process.exit(0)));
}

/** @type {Record<string, () => Promise<void>>} */
const modes = { ladder, rounds, flows, relay };
const run = modes[mode];
if (!run) {
  log(`unknown mode ${mode}`);
  process.exit(2);
}
process.on('disconnect', () => process.exit(0));
// The bench stops a worker with SIGTERM once it has its result: exit normally, so that Node flags that
// write on exit (BENCH_NODE_FLAGS="--cpu-prof ...") still write.
if (mode !== 'relay') process.on('SIGTERM', () => process.exit(0));
try {
  await run();
  if (mode !== 'relay') process.disconnect?.();
} catch (err) {
  await send({ type: 'error', message: why(err) });
  process.disconnect?.();
}
