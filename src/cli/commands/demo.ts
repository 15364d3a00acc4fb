import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Agent } from '../../agent/agent.js';
import { logProbeTransitions } from '../../agent/probe-transitions.js';
import { startStack, type AgentStack } from '../../agent/stack.js';
import type { Observation } from '../../core/types.js';
import { parseConfig, parseListen } from '../../config/load.js';
import { toReport, type ProbeReport } from '../../core/report.js';
import { startDnsServer } from '../../target/dns-server.js';
import { startExampleService } from '../../target/example-service.js';
import { startRelay } from '../../transports/websocket/relay.js';

import { icmpHeadline } from '../../probes/icmp/headline.js';
import { ms, phasesText, table } from '../format.js';
import { logFormatOption, logLevelOption, type CliLogging, type LogFlags } from '../logging.js';
import type { Io } from '../main.js';
import { DURATION_UNITS, durationFlag } from '../options.js';
import { untilSignal } from '../signals.js';
import { EXAMPLE_DNS_NAME, exampleZone } from './target.js';

interface Tally {
  runs: number;
  failures: number;
  recent: number[];
  last?: ProbeReport;
}

export function demoCommand(program: Command, io: Io, logging: CliLogging): void {
  program
    .command('demo')
    .description(
      'Run a self-contained demo: the example target service and an agent probing it with every kind',
    )
    .option('-l, --listen <host:port>', 'address of the agent endpoints', '127.0.0.1:9777')
    .addOption(durationFlag('-i, --interval <duration>', `probe interval ${DURATION_UNITS}`, 2000))
    .addOption(durationFlag('-d, --duration <duration>', 'stop after this long (default: run until Ctrl-C)'))
    .addOption(logFormatOption())
    .addOption(logLevelOption())
    .action(async (opts: { listen: string; interval: number; duration?: number } & LogFlags) => {
      const log = logging.start(opts);
      const dir = await mkdtemp(join(tmpdir(), 'coalmine-demo-'));
      const service = await startExampleService({
        host: '127.0.0.1',
        port: 0,
        notesFile: join(dir, 'notes.txt'),
      });
      const dns = await startDnsServer({ host: '127.0.0.1', port: 0, records: exampleZone('127.0.0.1') });
      const relay = await startRelay({ host: '127.0.0.1', port: 0 });
      const seconds = `${opts.interval / 1000}s`;
      const config = parseConfig(
        [
          `interval: ${seconds}`,
          'metrics: { compat: [latency404] }',
          'targets:',
          `  - { name: example-http, kind: http, target: "${service.url}/health", validStatusCodes: [200] }`,
          `  - { name: example-tcp, kind: tcp, target: "127.0.0.1:${service.port}" }`,
          `  - { name: example-dns, kind: dns, target: ${EXAMPLE_DNS_NAME}, server: "127.0.0.1:${dns.port}" }`,
          '  - { name: loopback-icmp, kind: icmp, target: 127.0.0.1, packets: 5, packetIntervalMs: 20 }',
          'transports:',
          `  - { name: relay, url: "${relay.url}" }`,
          'canaries:',
          '  - { name: demo-canary, transport: relay, rate: 20 }',
          'coalminers:',
          '  - { name: eu-west, transport: relay, register: [demo-canary], region: eu-west-1, lossTimeout: 2 }',
          '  - { name: ap-southeast, transport: relay, register: [demo-canary], region: ap-southeast-1, lossTimeout: 2 }',
          // Alert rules the demo evaluates (no notifiers): see them in the dashboard's Alerts view.
          'alerting:',
          '  rules:',
          `    - { name: example-http-slow, target: example-http, condition: { latency: { percentile: 95, above: 0.25 } }, datapoints: { m: 2, n: 3 }, evaluateEvery: ${seconds} }`,
          `    - { name: example-tcp-down, target: example-tcp, condition: { probeFailing: {} }, evaluateEvery: ${seconds} }`,
          `    - { name: eu-west-loss, flow: { canary: demo-canary, coalminer: eu-west }, condition: { lossRatio: { above: 0.01 } }, datapoints: { m: 2, n: 3 }, evaluateEvery: ${seconds} }`,
          `    - { name: ap-southeast-silent, flow: { canary: demo-canary, coalminer: ap-southeast }, condition: { noData: { for: 10s } }, evaluateEvery: ${seconds} }`,
        ].join('\n'),
        'demo',
      );
      config.listen = parseListen(opts.listen);
      const tallies = new Map<string, Tally>();
      // History in the demo's own temporary directory: the dashboard has data, nothing is left behind.
      config.store = {
        url: `sqlite:${join(dir, 'coalmine.db')}`,
        retention: { raw: 86_400_000, '1m': 86_400_000, '1h': 86_400_000 },
      };
      const transitions = logProbeTransitions(log);
      const onObservation = (o: Observation) => {
        transitions(o);
        const t = tallies.get(o.name) ?? { runs: 0, failures: 0, recent: [] };
        const r = toReport(o);
        t.runs++;
        if (!r.ok) t.failures++;
        // The figures are network time (an ICMP round's mean RTT, not the round), of successful runs.
        if (r.networkSeconds !== undefined) t.recent.push(r.networkSeconds);
        if (t.recent.length > 100) t.recent.shift();
        t.last = r;
        tallies.set(o.name, t);
      };
      let stack: AgentStack;
      try {
        stack = await startStack(config, { log, onObservation, flowSampleMs: 2000 });
      } catch (err) {
        if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
        log.warn('listen address in use; serving on an ephemeral port instead', {
          component: 'agent',
          listen: opts.listen,
        });
        config.listen = { ...config.listen, port: 0 };
        stack = await startStack(config, { log, onObservation, flowSampleMs: 2000 });
      }
      const stop = opts.duration !== undefined ? AbortSignal.timeout(opts.duration) : undefined;
      // Listening for the signal before saying we are up: a Ctrl-C right after that line is a clean stop.
      const stopped = untilSignal(stop);
      log.info('demo started', { component: 'agent', url: stack.server.url, dashboard: stack.dashboard });
      const { agent, server } = stack;
      io.out(
        [
          'coalmine demo: probing the example service with http, tcp, dns and icmp every ' + seconds,
          `  example service  ${service.url}/health   DNS ${EXAMPLE_DNS_NAME} at 127.0.0.1:${dns.port}`,
          `  messaging        canary demo-canary -> coalminers eu-west, ap-southeast through the relay at ${relay.url}`,
          `  dashboard        ${stack.dashboard}`,
          `  metrics          ${server.url}/metrics`,
          `  check now        curl -X POST ${server.url}/check`,
          'Press Ctrl-C to stop.',
          '',
        ].join('\n'),
      );
      const render = () => `${summary(agent.targetNames(), tallies)}\n\n${flowSummary(agent)}`;
      const timer = setInterval(
        () => {
          if (io.isTty) io.out(`\x1b[J${render()}\x1b[${render().split('\n').length}A`);
          else io.out(render() + '\n');
        },
        Math.max(opts.interval, 2000),
      );
      await stopped;
      clearInterval(timer);
      io.out(`${io.isTty ? '\x1b[J' : ''}${render()}\n`);
      await stack.close();
      await Promise.all([service.close(), dns.close(), relay.close()]);
      await rm(dir, { recursive: true, force: true });
      log.info('demo stopped', { component: 'agent' });
    });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function summary(names: string[], tallies: Map<string, Tally>): string {
  const rows = names.map((name) => {
    const t = tallies.get(name);
    if (!t?.last) return [name, '-', 'waiting', '', '', '', '', '', ''];
    const sorted = [...t.recent].sort((a, b) => a - b);
    const last = t.last;
    return [
      name,
      last.kind,
      last.ok ? 'up' : 'DOWN',
      `${t.runs - t.failures}/${t.runs}`,
      last.networkSeconds !== undefined ? ms(last.networkSeconds) : '-',
      ms(percentile(sorted, 50)),
      ms(percentile(sorted, 95)),
      ms(last.durationSeconds),
      last.ok
        ? (icmpHeadline(last.values ?? {}) ?? phasesText(last.phases))
        : `${last.error?.code}: ${last.error?.message}`,
    ];
  });
  return table(
    ['TARGET', 'KIND', 'STATUS', 'OK/RUNS', 'NETWORK', 'P50', 'P95', 'WALL', 'PHASES (ms) / ERROR'],
    rows,
  );
}

function flowSummary(agent: Agent): string {
  const rows: string[][] = [];
  for (const { c, region } of agent.messaging.coalminers) {
    for (const r of c.reports()) {
      const k = r.counts;
      rows.push([
        `${r.canary} -> ${c.name}`,
        region,
        String(k.received),
        String(k.lost),
        String(k.inFlight),
        String(k.duplicated),
        String(k.reordered),
        ms(r.latency.p50),
        ms(r.latency.p95),
        ms(r.latency.p99),
      ]);
    }
  }
  if (rows.length === 0) return 'FLOWS: waiting for coalminers to register';
  return table(
    ['FLOW', 'REGION', 'RECEIVED', 'LOST', 'IN FLIGHT', 'DUP', 'REORDERED', 'P50', 'P95', 'P99'],
    rows,
  );
}
