// @ts-check
/**
 * bench/scale.mjs's load driver for the peer (argv: blackbox-rate <json args>): drives
 * blackbox_exporter's /probe open-loop at `rate` requests a second for `seconds`, cycling through
 * `targets`, with at most `maxInFlight` requests outstanding. A request that falls due while the bound
 * is reached is not sent and is counted as held, so every due slot is either sent or counted.
 * Result over IPC: due, sent, held, ok, failed, the first failure, and the client's own CPU.
 */
import { Agent as HttpAgent, get } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

const [mode = '', rawArgs = '{}'] = process.argv.slice(2);
/** @type {{ base: string, module: string, targets: string[], rate: number, seconds: number, maxInFlight: number, timeoutS: number }} */
const args = JSON.parse(rawArgs);

/** @param {object} m @returns {Promise<void>} */
const send = (m) =>
  new Promise((resolve) => (process.send ? process.send(m, undefined, {}, () => resolve()) : resolve()));
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function blackboxRate() {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: args.maxInFlight });
  const headers = { 'x-prometheus-scrape-timeout-seconds': String(args.timeoutS + 0.5) };
  let sent = 0;
  let held = 0;
  let ok = 0;
  let failed = 0;
  let inFlight = 0;
  let firstError = '';
  /** @param {string} why */
  const fail = (why) => {
    failed++;
    firstError ||= why;
  };
  /** @param {string} target */
  const one = (target) =>
    new Promise((resolve) => {
      const url = `${args.base}/probe?module=${args.module}&target=${encodeURIComponent(target)}`;
      const req = get(url, { agent, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => {
          if (res.statusCode === 200 && /^probe_success 1$/m.test(body)) ok++;
          else fail(`status ${res.statusCode}: ${body.slice(0, 200)}`);
          resolve(undefined);
        });
        res.on('error', (e) => {
          fail(e.message);
          resolve(undefined);
        });
      });
      req.setTimeout((args.timeoutS + 2) * 1000, () => req.destroy(new Error('client timeout')));
      req.on('error', (e) => {
        fail(e.message);
        resolve(undefined);
      });
    });

  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const endMs = t0 + args.seconds * 1000;
  let due = 0;
  for (let now = t0; now < endMs; now = performance.now()) {
    const dueNow = Math.floor(((now - t0) / 1000) * args.rate);
    for (; due < dueNow; due++) {
      if (inFlight >= args.maxInFlight) {
        held++;
        continue;
      }
      const target = /** @type {string} */ (args.targets[sent++ % args.targets.length]);
      inFlight++;
      void one(target).then(() => inFlight--);
    }
    await sleep(2);
  }
  const seconds = (performance.now() - t0) / 1000;
  while (inFlight > 0) await sleep(10);
  agent.destroy();
  await send({
    type: 'result',
    due,
    sent,
    held,
    ok,
    failed,
    firstError,
    seconds,
    cpuSeconds: cpuSeconds() - cpu0,
  });
}

/** @type {Record<string, () => Promise<void>>} */
const modes = { 'blackbox-rate': blackboxRate };
const run = modes[mode];
if (!run) {
  process.stderr.write(`scale-child: unknown mode ${mode}\n`);
  process.exit(2);
}
process.on('disconnect', () => process.exit(0));
try {
  await run();
} catch (err) {
  await send({ type: 'error', message: String(/** @type {Error} */ (err)?.stack ?? err) });
}
process.disconnect?.();
