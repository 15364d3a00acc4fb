import type { Command } from 'commander';
import { allowEntry, MIN_SECRET_LENGTH, rateSchema } from '../../config/messaging.js';
import { parseListen } from '../../config/load.js';
import { UsageError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { Canary, type FlowStats } from '../../messaging/canary.js';
import { Coalminer, summarize, type FlowReport, type LatencySummary } from '../../messaging/coalminer.js';
import { isValidName } from '../../messaging/envelope.js';
import { addCounts, emptyCounts } from '../../messaging/sequence.js';
import { LatencyHistogram } from '../../stats/histogram.js';
import { redactUrl } from '../../transports/base.js';
import {
  allSchemes,
  checkTransportUrl,
  createTransport,
  transportKindOf,
} from '../../transports/registry.js';
import { logTransportStatus } from '../../transports/status-log.js';
import type { Transport } from '../../transports/transport.js';
import { startRelay } from '../../transports/websocket/relay.js';
import { ms } from '../format.js';
import { logFormatOption, logLevelOption, type CliLogging, type LogFlags } from '../logging.js';
import type { Io } from '../main.js';
import { DURATION_UNITS, durationFlag } from '../options.js';
import { untilSignal } from '../signals.js';

const TRANSPORT_HELP = `transport URL: ${allSchemes()
  .map((s) => `${s}://`)
  .join(', ')}`;

function rateOption(text: string): number {
  const r = rateSchema.safeParse(/^\d+(\.\d+)?$/.test(text) ? Number(text) : text);
  if (!r.success) throw new UsageError(`--rate: ${r.error.issues[0]?.message ?? 'invalid rate'}`);
  return r.data;
}

function nameOption(flag: string) {
  return (text: string): string => {
    if (!isValidName(text))
      throw new UsageError(`${flag}: a name is 1-64 letters, digits, "_", "." or "-" (got "${text}")`);
    return text;
  };
}

function allowOption(text: string, previous: string[] = []): string[] {
  if (!allowEntry.safeParse(text).success)
    throw new UsageError(`--allow: a coalminer name, or a glob over names with "*" and "?" (got "${text}")`);
  return [...previous, text];
}

function maxCoalminersOption(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 10_000)
    throw new UsageError(`--max-coalminers: expected a whole number from 1 to 10000 (got "${text}")`);
  return n;
}

const SECRET_ENV_HELP =
  'sign every message with the secret in this environment variable (16+ characters), and refuse unsigned ones';

/** The shared secret `--secret-env VAR` names, or a usage error saying what is wrong with it. */
function secretFromEnv(name: string | undefined): { secret?: string } {
  if (name === undefined) return {};
  const value = process.env[name];
  if (value === undefined || value === '')
    throw new UsageError(
      `--secret-env: environment variable ${name} is not set (it should hold the shared secret)`,
    );
  if (value.length < MIN_SECRET_LENGTH)
    throw new UsageError(
      `--secret-env: the secret in ${name} is ${value.length} characters; use ${MIN_SECRET_LENGTH} or more (e.g. openssl rand -hex 16)`,
    );
  return { secret: value };
}

function sizeOption(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 1_048_576)
    throw new UsageError(`--size: expected bytes from 0 to 1048576 (got "${text}")`);
  return n;
}

/**
 * Creates and connects a transport, failing with a usage error (exit 2) when the first connection does;
 * after that its disconnects and reconnects are logged on `log` (which says whose transport it is).
 */
async function openTransport(url: string, clientName: string, log: Logger): Promise<Transport> {
  // Every problem with the URL, before anything connects (config check runs the same check).
  const problems = await checkTransportUrl(url);
  if (problems.length === 1 && !transportKindOf(url)) throw new UsageError(problems[0]!);
  if (problems.length)
    throw new UsageError(
      problems.length === 1
        ? `${redactUrl(url)}: ${problems[0]}`
        : `${redactUrl(url)}: ${problems.length} problems:\n  ${problems.join('\n  ')}`,
    );
  const t = await createTransport(
    url,
    { clientName },
    log.child({ component: 'transport', url: redactUrl(url) }),
  );
  void logTransportStatus(t, log.child({ component: 'transport', transport: t.kind, url: t.displayUrl }));
  try {
    await t.connect(AbortSignal.timeout(15_000));
  } catch (err) {
    await t.close();
    // A transport's own error already says "cannot connect to URL: why — hint"; say it once.
    const why = (err as Error).message;
    throw new UsageError(
      why.startsWith('cannot connect to ') ? why : `cannot connect to ${redactUrl(url)}: ${why}`,
    );
  }
  return t;
}

export interface MessagingSummary {
  transport: string;
  url: string;
  durationSeconds: number;
  rate: number;
  /**
   * The canary's schedule (absent in a coalminer's summary): pings due = attempted + behindSchedule, and
   * attempted = sent + sendFailed (+ publishes still pending when it stopped).
   */
  due?: number;
  attempted?: number;
  /** Pings that fell due before the canary stopped but were never attempted. */
  behindSchedule?: number;
  /** How far behind its schedule the canary was when it stopped. */
  behindScheduleSeconds?: number;
  /** Pings attempted per second of pinging, and whether that was at least 99% of the pings due. */
  achievedRate?: number;
  rateReached?: boolean;
  sent: number;
  received: number;
  lost: number;
  inFlight: number;
  sendFailed: number;
  /**
   * Publishes that reported an error yet arrived (in-doubt publishes): counted in `sent` and not in
   * `sendFailed`, so sent is never below what arrived; the canary's raw error counts are in sendErrors.
   */
  sendFailedArrived: number;
  /** Pings that reached the coalminer but that its own full buffer dropped: not lost in the broker. */
  droppedLocally: number;
  /** Pings that arrived before they were sent by the corrected clocks (the clock bound was wrong). */
  negativeLatency: number;
  duplicated: number;
  reordered: number;
  late: number;
  stale: number;
  foreign: number;
  sendErrors: Record<string, number>;
  latency: LatencySummary;
  latencyFromSent: LatencySummary;
  publishAck?: LatencySummary;
  clockOffset?: { seconds: number; errorSeconds: number };
}

function sumFlows(reports: FlowReport[]) {
  return reports.reduce((c, r) => addCounts(c, r.counts), emptyCounts());
}

export function formatSummary(title: string, s: MessagingSummary): string {
  const errors = Object.entries(s.sendErrors)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const lat = (l: LatencySummary) =>
    l.count === 0
      ? 'no samples'
      : `p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p95 ${ms(l.p95)}  p99 ${ms(l.p99)}  p99.9 ${ms(l.p999)}  max ${ms(l.max)}`;
  const lines = [title];
  if (s.due !== undefined) {
    lines.push(
      `  canary behind schedule: ${s.behindSchedule ?? 0} pings, ${(s.behindScheduleSeconds ?? 0).toFixed(3)} s  (due ${s.due}, attempted ${s.attempted ?? 0})`,
    );
    if (s.rateReached === false)
      lines.push(
        `  rate not reached: attempted ${Math.round(s.achievedRate ?? 0)}/s of the ${s.rate}/s asked`,
      );
  }
  lines.push(
    `  sent ${s.sent}  received ${s.received}  lost ${s.lost}  in flight ${s.inFlight}  duplicated ${s.duplicated}  reordered ${s.reordered}  late ${s.late}  foreign ${s.foreign}`,
    `  send errors ${s.sendFailed}${errors ? ` (${errors} reported)` : ''}${s.sendFailedArrived > 0 ? `; ${s.sendFailedArrived} more reported failed but arrived (in-doubt publishes, counted as sent)` : ''}`,
    `  dropped by this coalminer ${s.droppedLocally}${s.negativeLatency > 0 ? `  arrived before sent (clock bound wrong) ${s.negativeLatency}` : ''}`,
    `  latency from intended send  ${lat(s.latency)}`,
    `  latency from actual send    ${lat(s.latencyFromSent)}`,
  );
  if ((s.behindSchedule ?? 0) > 0)
    lines.push(
      `  (latency from intended send counts the ${s.behindSchedule} pings never sent at their wait when the canary stopped: a lower bound)`,
    );
  if (s.publishAck) lines.push(`  publish acknowledgement     ${lat(s.publishAck)}`);
  if (s.clockOffset)
    lines.push(
      `  clock offset to canary      ${ms(s.clockOffset.seconds)} ± ${ms(s.clockOffset.errorSeconds)}`,
    );
  return lines.join('\n');
}

export function buildSummary(
  t: Transport,
  durationSeconds: number,
  rate: number,
  coalminer: Coalminer,
  canaryStats: FlowStats | undefined,
  ack?: LatencyHistogram,
): MessagingSummary {
  const reports = coalminer.reports();
  const c = sumFlows(reports);
  const lat = new LatencyHistogram();
  const latSent = new LatencyHistogram();
  // Merge the flows' raw histograms: percentiles cannot be averaged.
  coalminer.histograms().forEach(([a, b]) => {
    lat.merge(a);
    latSent.merge(b);
  });
  const summary: MessagingSummary = {
    transport: t.kind,
    url: t.displayUrl,
    durationSeconds,
    rate,
    // A publish that reported an error and arrived was sent: `sent` is never below what arrived.
    sent: canaryStats ? canaryStats.sent + c.sendFailedArrived : c.received + c.lost + c.inFlight,
    received: c.received,
    lost: c.lost,
    inFlight: c.inFlight,
    sendFailed: canaryStats ? Math.max(0, canaryStats.failed - c.sendFailedArrived) : c.sendFailed,
    sendFailedArrived: c.sendFailedArrived,
    droppedLocally: c.droppedLocally,
    negativeLatency: coalminer.negativeLatency,
    duplicated: c.duplicated,
    reordered: c.reordered,
    late: c.late,
    stale: c.stale,
    foreign: coalminer.foreign,
    sendErrors: canaryStats?.errors ?? {},
    latency: summarize(lat),
    latencyFromSent: summarize(latSent),
  };
  if (canaryStats) {
    // Pings still waiting when the canary stopped have waited at least this long since their intended
    // time (wrk2's correction): left out, an overloaded canary would show the latency of the few it sent.
    recordWaiting(lat, canaryStats.behind, canaryStats.behindSeconds * 1e9, 1e9 / rate);
    summary.latency = summarize(lat);
    summary.due = canaryStats.due;
    summary.attempted = canaryStats.attempted;
    summary.behindSchedule = canaryStats.behind;
    summary.behindScheduleSeconds = canaryStats.behindSeconds;
    // Over the schedule's own span (due pings at the asked rate), the same span `due` counts: attempts
    // over the time since the confirm read high, since `due` starts counting at registration.
    summary.achievedRate = canaryStats.due > 0 ? (canaryStats.attempted * rate) / canaryStats.due : 0;
    summary.rateReached = canaryStats.attempted >= 0.99 * canaryStats.due;
  }
  if (ack && ack.count > 0) summary.publishAck = summarize(ack);
  const canary = reports[0]?.canary;
  const est = canary ? coalminer.clockEstimate(canary) : undefined;
  if (est) summary.clockOffset = { seconds: est.offsetNs / 1e9, errorSeconds: est.errorNs / 1e9 };
  return summary;
}

/**
 * Records `count` never-sent pings whose oldest had waited `oldestNs` at the end, one interval apart, in at
 * most about 10,000 weighted steps.
 */
function recordWaiting(h: LatencyHistogram, count: number, oldestNs: number, intervalNs: number): void {
  const step = Math.max(1, Math.ceil(count / 10_000));
  for (let i = 0; i < count; i += step) {
    const n = Math.min(step, count - i);
    // Each step at its youngest ping's wait, so that the whole stays a lower bound.
    h.record(Math.max(0, oldestNs - (i + n - 1) * intervalNs), n);
  }
}

export function messagingCommands(
  program: Command,
  io: Io,
  logging: CliLogging,
  setExit: (code: number) => void,
): void {
  program
    .command('pair')
    .description(
      'Run a canary and a coalminer through one messaging system in one process: a one-command health check of a broker',
    )
    .argument('<url>', TRANSPORT_HELP)
    .option('-r, --rate <rate>', 'pings per second (or N/s, N/m)', rateOption, 100)
    .addOption(durationFlag('-d, --duration <duration>', `how long to send ${DURATION_UNITS}`, 10_000))
    .option('-s, --size <bytes>', 'pad each ping to this many bytes', sizeOption, 0)
    .addOption(durationFlag('--loss-timeout <duration>', 'a missing ping is declared lost after this', 2000))
    .option('--json', 'print the summary as one JSON object')
    .addOption(logFormatOption())
    .addOption(logLevelOption())
    .action(
      async (
        url: string,
        opts: {
          rate: number;
          duration: number;
          size: number;
          lossTimeout: number;
          json?: boolean;
        } & LogFlags,
      ) => {
        const log = logging.start(opts);
        const pub = await openTransport(url, 'coalmine-pair-canary', log.child({ canary: 'pair-canary' }));
        let sub: Transport;
        try {
          sub = await openTransport(
            url,
            'coalmine-pair-coalminer',
            log.child({ coalminer: 'pair-coalminer' }),
          );
        } catch (err) {
          await pub.close();
          throw err;
        }
        const ack = new LatencyHistogram();
        const canary = new Canary({
          name: 'pair-canary',
          transport: pub,
          ratePerSecond: opts.rate,
          sizeBytes: opts.size,
          observer: { publishAck: (_c, s) => ack.record(s * 1e9) },
          log,
        });
        const coalminer = new Coalminer({
          name: 'pair-coalminer',
          transport: sub,
          register: ['pair-canary'],
          sequence: { lossTimeoutMs: opts.lossTimeout },
          clockSyncIntervalMs: 1000,
          log,
        });
        try {
          await canary.start();
          await coalminer.start();
          const registered = Date.now() + 10_000;
          while (!coalminer.isConfirmedBy('pair-canary') && Date.now() < registered)
            await new Promise((r) => setTimeout(r, 20));
          if (!coalminer.isConfirmedBy('pair-canary'))
            throw new UsageError(`registration through ${pub.displayUrl} got no answer within 10 s`);
          const plog = log.child({ component: 'pair', transport: pub.kind, url: pub.displayUrl });
          plog.info('pinging', { rate: opts.rate, durationMs: opts.duration });
          const started = Date.now();
          const progress = setInterval(() => {
            const c = sumFlows(coalminer.reports());
            plog.info('progress', {
              elapsedMs: Date.now() - started,
              received: c.received,
              lost: c.lost,
              inFlight: c.inFlight,
            });
          }, 5000);
          await untilSignal(AbortSignal.timeout(opts.duration));
          clearInterval(progress);
          // How long it pinged, not counting the wait for the last pings below.
          const pingedSeconds = (Date.now() - started) / 1000;
          await canary.stop();
          // Give the last pings their loss timeout to arrive before judging.
          await new Promise((r) => setTimeout(r, Math.min(opts.lossTimeout + 200, 10_000)));
          coalminer.tick();
          const summary = buildSummary(
            pub,
            pingedSeconds,
            opts.rate,
            coalminer,
            canary.stats().get('pair-coalminer'),
            ack,
          );
          io.out(
            opts.json
              ? JSON.stringify(summary)
              : formatSummary(
                  `coalmine pair ${pub.displayUrl}: ${opts.rate}/s for ${summary.durationSeconds.toFixed(1)} s`,
                  summary,
                ),
          );
          const failed = summary.lost + summary.sendFailed + summary.inFlight > 0;
          setExit(failed || summary.rateReached === false ? 1 : 0);
        } finally {
          await coalminer.stop();
          await canary.stop();
          await Promise.all([pub.close(), sub.close()]);
        }
      },
    );

  program
    .command('canary')
    .description(
      'Send sequenced, timestamped pings through a messaging system to every coalminer that registers',
    )
    .requiredOption('-t, --transport <url>', TRANSPORT_HELP)
    .requiredOption('-n, --name <name>', 'canary name coalminers register with', nameOption('--name'))
    .option('--channel <prefix>', 'channel name prefix', 'coalmine')
    .option('-r, --rate <rate>', 'pings per second to each coalminer (or N/s, N/m)', rateOption, 1)
    .option('-s, --size <bytes>', 'pad each ping to this many bytes', sizeOption, 0)
    .option('--echo', 'ask coalminers to echo each ping (round-trip time on this clock)')
    .option('-c, --coalminer <name...>', 'coalminers to ping without waiting for them to register')
    .option(
      '--allow <pattern>',
      'a coalminer that may register: a name, or a glob such as "eu-*" (repeatable; default: any name)',
      allowOption,
    )
    .option(
      '--max-coalminers <n>',
      'most coalminers pinged at once; registrations beyond it are refused',
      maxCoalminersOption,
      100,
    )
    .option('--secret-env <var>', SECRET_ENV_HELP)
    .addOption(
      durationFlag(
        '-d, --duration <duration>',
        `stop after this long ${DURATION_UNITS} (default: until Ctrl-C)`,
      ),
    )
    .addOption(logFormatOption())
    .addOption(logLevelOption())
    .action(
      async (
        opts: {
          transport: string;
          name: string;
          channel: string;
          rate: number;
          size: number;
          echo?: boolean;
          coalminer?: string[];
          allow?: string[];
          maxCoalminers: number;
          secretEnv?: string;
          duration?: number;
        } & LogFlags,
      ) => {
        const log = logging.start(opts);
        const secret = secretFromEnv(opts.secretEnv);
        const t = await openTransport(opts.transport, opts.name, log.child({ canary: opts.name }));
        const rtt = new LatencyHistogram();
        const canary = new Canary({
          name: opts.name,
          transport: t,
          prefix: opts.channel,
          ratePerSecond: opts.rate,
          sizeBytes: opts.size,
          echo: opts.echo,
          coalminers: opts.coalminer,
          allow: opts.allow,
          maxCoalminers: opts.maxCoalminers,
          ...secret,
          observer: { rtt: (_c, s) => rtt.record(s * 1e9) },
          log,
        });
        await canary.start();
        const clog = log.child({ component: 'canary', canary: opts.name, transport: t.kind });
        // Listening for the signal before saying we are up: a Ctrl-C right after that line is a clean stop.
        const stopped = untilSignal(
          opts.duration !== undefined ? AbortSignal.timeout(opts.duration) : undefined,
        );
        clog.info('waiting for coalminers', {
          url: t.displayUrl,
          channel: `${opts.channel}.canary.${opts.name}`,
        });
        const progress = setInterval(() => {
          for (const [name, s] of canary.stats())
            clog.info('progress', {
              coalminer: name,
              sent: s.sent,
              sendErrors: s.failed,
              pending: s.pending,
            });
        }, 10_000);
        await stopped;
        clearInterval(progress);
        await canary.stop();
        const stats = [...canary.stats()];
        const out = Object.fromEntries(stats.map(([k, v]) => [k, v]));
        const behindSchedule = {
          pings: stats.reduce((n, [, v]) => n + v.behind, 0),
          seconds: stats.reduce((x, [, v]) => Math.max(x, v.behindSeconds), 0),
          due: stats.reduce((n, [, v]) => n + v.due, 0),
          attempted: stats.reduce((n, [, v]) => n + v.attempted, 0),
        };
        const line = `canary behind schedule: ${behindSchedule.pings} pings, ${behindSchedule.seconds.toFixed(3)} s`;
        if (behindSchedule.attempted < 0.99 * behindSchedule.due) clog.warn(line, behindSchedule);
        else clog.info(line, behindSchedule);
        io.out(
          JSON.stringify({
            canary: opts.name,
            coalminers: out,
            behindSchedule,
            refused: canary.refused(),
            ...(rtt.count ? { rtt: summarize(rtt) } : {}),
          }),
        );
        await t.close();
      },
    );

  program
    .command('coalminer')
    .description(
      'Register with a canary, receive its pings, and report latency, loss, duplicates and reordering',
    )
    .requiredOption('-t, --transport <url>', TRANSPORT_HELP)
    .requiredOption('-n, --name <name>', "this coalminer's name", nameOption('--name'))
    .requiredOption('-r, --register <canary...>', 'canaries to register with')
    .option('--channel <prefix>', 'channel name prefix', 'coalmine')
    .option('--region <region>', 'region label', '')
    .addOption(durationFlag('--loss-timeout <duration>', 'a missing ping is declared lost after this', 5000))
    .option('--secret-env <var>', SECRET_ENV_HELP)
    .addOption(
      durationFlag(
        '-d, --duration <duration>',
        `stop after this long ${DURATION_UNITS} (default: until Ctrl-C)`,
      ),
    )
    .option('--json', 'print the final summary as one JSON object')
    .addOption(logFormatOption())
    .addOption(logLevelOption())
    .action(
      async (
        opts: {
          transport: string;
          name: string;
          register: string[];
          channel: string;
          region: string;
          lossTimeout: number;
          secretEnv?: string;
          duration?: number;
          json?: boolean;
        } & LogFlags,
      ) => {
        const log = logging.start(opts);
        for (const c of opts.register) nameOption('--register')(c);
        const secret = secretFromEnv(opts.secretEnv);
        const t = await openTransport(opts.transport, opts.name, log.child({ coalminer: opts.name }));
        const coalminer = new Coalminer({
          name: opts.name,
          transport: t,
          register: opts.register,
          prefix: opts.channel,
          region: opts.region,
          sequence: { lossTimeoutMs: opts.lossTimeout },
          ...secret,
          log,
        });
        await coalminer.start();
        const clog = log.child({
          component: 'coalminer',
          coalminer: opts.name,
          transport: t.kind,
          ...(opts.region ? { region: opts.region } : {}),
        });
        const started = Date.now();
        const stopped = untilSignal(
          opts.duration !== undefined ? AbortSignal.timeout(opts.duration) : undefined,
        );
        clog.info('waiting for pings', { url: t.displayUrl, register: opts.register });
        const progress = setInterval(() => {
          const c = sumFlows(coalminer.reports());
          const p = coalminer.histograms().reduce((h, [a]) => (h.merge(a), h), new LatencyHistogram());
          clog.info('progress', {
            received: c.received,
            lost: c.lost,
            inFlight: c.inFlight,
            ...(p.count > 0 ? { p50Ms: p.percentile(50) / 1e6, p99Ms: p.percentile(99) / 1e6 } : {}),
          });
        }, 10_000);
        await stopped;
        clearInterval(progress);
        await coalminer.stop();
        const summary = buildSummary(t, (Date.now() - started) / 1000, 0, coalminer, undefined);
        io.out(
          opts.json
            ? JSON.stringify(summary)
            : formatSummary(`coalminer ${opts.name} on ${t.displayUrl}`, summary),
        );
        await t.close();
      },
    );

  program
    .command('relay')
    .description('Run the embedded WebSocket relay that ws:// canaries and coalminers talk through')
    .option('-l, --listen <host:port>', 'address to listen on', '127.0.0.1:9400')
    .option('--max-payload <bytes>', 'largest message accepted', (v) => sizeOption(v), 1_048_576)
    .option('--max-clients <n>', 'most clients at once', (v) => Number(v), 10_000)
    .addOption(logFormatOption())
    .addOption(logLevelOption())
    .action(async (opts: { listen: string; maxPayload: number; maxClients: number } & LogFlags) => {
      const log = logging.start(opts).child({ component: 'relay' });
      const { host, port } = parseListen(opts.listen);
      const relay = await startRelay({
        host,
        port,
        maxPayload: opts.maxPayload,
        maxClients: opts.maxClients,
      });
      const stopped = untilSignal();
      log.info('relay listening', { url: relay.url, hop: relay.hopId });
      await stopped;
      const s = relay.stats();
      log.info('relay stopping', { published: s.published, delivered: s.delivered, clients: s.clients });
      await relay.close();
    });
}
