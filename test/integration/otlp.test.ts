import { lineLogger } from '../support/logs.js';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sleepAtLeast } from '../support/async.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent, VERSION } from '../../src/agent/agent.js';
import { parseConfig } from '../../src/config/load.js';
import { nsToSeconds } from '../../src/core/clock.js';
import type { Observation } from '../../src/core/types.js';
import { bucketsByIndex, definitionBuckets } from '../support/exponential-buckets.js';
import { freePort } from '../support/net.js';
import { haveCommand } from '../support/require.js';
import {
  metricOf,
  pointsOf,
  startOtlpReceiver,
  type OtlpReceiver,
  type ReceivedExport,
} from '../support/otlp-receiver.js';

/** How long the HTTP target waits before it answers: the ground truth of its processing phase. */
const DELAY_MS = 40;

const promValue = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('the agent exports over OTLP to a receiver the test started', () => {
  let receiver: OtlpReceiver;
  let slow: HttpServer;
  let tcp: Server;
  let httpUrl: string;
  let tcpTarget: string;
  const agents: Agent[] = [];

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    slow = createHttpServer((_req, res) => {
      void sleepAtLeast(DELAY_MS).then(() => res.end('ok'));
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    httpUrl = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/health`;
    tcp = createServer((s) => s.end());
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    tcpTarget = `127.0.0.1:${(tcp.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.close()));
    receiver.behave({ type: 'ok' });
  });
  afterAll(async () => {
    await receiver.close();
    slow.closeAllConnections();
    await new Promise((r) => slow.close(r));
    await new Promise((r) => tcp.close(r));
  });

  function agent(yaml: string, observations: Observation[] = [], log: string[] = []): Agent {
    const a = new Agent(parseConfig(yaml), {
      processMetrics: false,
      onObservation: (o) => observations.push(o),
      log: lineLogger(log),
    });
    agents.push(a);
    return a;
  }

  it('sends real probe runs and a canary-coalminer pair, histograms matching every measurement', async () => {
    const observations: Observation[] = [];
    const a = agent(
      [
        'targets:',
        `  - { name: web, kind: http, target: "${httpUrl}", interval: 250ms }`,
        `  - { name: db, kind: tcp, target: "${tcpTarget}", interval: 250ms }`,
        'transports:',
        '  - { name: bus, url: "memory://otlp-integration" }',
        'canaries:',
        '  - { name: c1, transport: bus, rate: 100 }',
        'coalminers:',
        '  - { name: eu, transport: bus, register: [c1], region: eu-west-1 }',
        'otlp:',
        `  endpoint: "${receiver.url}"`,
        '  interval: 500ms',
        '  timeout: 450ms',
        '  headers: { x-api-key: integration-key }',
        '  resource: { deployment.environment: test }',
      ].join('\n'),
      observations,
    );
    a.start();
    // Exports arrive on their own, on the interval, while the agent runs.
    const running = await receiver.waitFor(
      'an export with three web runs and pings',
      (e) =>
        pointsOf(e, 'coalmine.probe.duration', { target: 'web' }).some((p) => p.count! >= 3) &&
        e.metrics.some((m) => m.name === 'coalmine.message.latency'),
    );
    expect(running.headers['x-api-key']).toBe('integration-key');
    expect(running.resource).toMatchObject({
      'service.name': 'coalmine',
      'service.version': VERSION,
      'host.name': hostname(),
      'deployment.environment': 'test',
    });
    await a.close();
    // close() exported once more, after the last run: that export holds every measurement.
    const e: ReceivedExport = receiver.exports.at(-1)!;

    for (const [target, kind] of [
      ['web', 'http'],
      ['db', 'tcp'],
    ] as const) {
      const runs = observations.filter((o) => o.name === target && o.result.ok);
      const seconds = runs.map((o) => nsToSeconds(o.result.durationNs));
      const [p] = pointsOf(e, 'coalmine.probe.duration', { target, result: 'success' });
      expect(p!.attributes).toEqual({ target, kind, result: 'success' });
      expect(p).toMatchObject({
        count: runs.length,
        sum: seconds.reduce((x, y) => x + y, 0),
        min: Math.min(...seconds),
        max: Math.max(...seconds),
        zeroCount: 0,
      });
      expect(bucketsByIndex(p!.offset!, p!.bucketCounts!)).toEqual(definitionBuckets(seconds, p!.scale!));
    }
    // The HTTP target waits 40 ms before it answers: every run and its processing phase took at least that.
    const [web] = pointsOf(e, 'coalmine.probe.duration', { target: 'web' });
    expect(web!.min).toBeGreaterThanOrEqual(DELAY_MS / 1000);
    const [processing] = pointsOf(e, 'coalmine.probe.phase.duration', { target: 'web', phase: 'processing' });
    expect(processing!.count).toBe(web!.count);
    expect(processing!.min).toBeGreaterThanOrEqual(DELAY_MS / 1000);
    expect(pointsOf(e, 'coalmine.probe.success', { target: 'web' })[0]).toMatchObject({ value: 1 });

    // Messaging: the flow's attributes, and the same counts as the agent's /metrics.
    const flow = { canary: 'c1', coalminer: 'eu', transport: 'memory', region: 'eu-west-1' };
    const [latency] = pointsOf(e, 'coalmine.message.latency', { ...flow, from: 'intended' });
    expect(latency!.attributes).toEqual({ ...flow, from: 'intended' });
    expect(latency!.count).toBeGreaterThan(20);
    expect(latency!.max).toBeLessThan(1);
    const prom = await a.registry.metrics();
    const labels = 'canary="c1",coalminer="eu",transport="memory",region="eu-west-1"';
    expect(latency!.count).toBe(
      promValue(prom, `coalmine_message_latency_seconds_count{${labels},from="intended"}`),
    );
    expect(latency!.sum).toBeCloseTo(
      promValue(prom, `coalmine_message_latency_seconds_sum{${labels},from="intended"}`)!,
      9,
    );
    expect(pointsOf(e, 'coalmine.messages.received', flow)[0]!.value).toBe(
      promValue(prom, `coalmine_messages_received_total{${labels}}`),
    );
    expect(metricOf(e, 'coalmine.messages.lost').points[0]).toMatchObject({ attributes: flow, value: 0 });
    expect(prom).toContain('coalmine_otlp_export_failures_total{reason="timeout"} 0');
    expect(promValue(prom, 'coalmine_otlp_exports_total')).toBeGreaterThanOrEqual(2);
    if (haveCommand('promtool', 'apt-get install prometheus')) {
      const check = spawnSync('promtool', ['check', 'metrics'], { input: prom, encoding: 'utf8' });
      expect(check.stdout + check.stderr).toBe('');
    }
  });

  it('exports once more when it stops, so the runs since the last export are not lost', async () => {
    const observations: Observation[] = [];
    const a = agent(
      [
        'targets:',
        `  - { name: db, kind: tcp, target: "${tcpTarget}", interval: 100ms }`,
        'otlp:',
        `  endpoint: "${receiver.url}"`,
        '  interval: 1h',
      ].join('\n'),
      observations,
    );
    const before = receiver.exports.length;
    a.start();
    await sleep(600);
    expect(receiver.exports.length).toBe(before);
    await a.close();
    expect(receiver.exports.length).toBe(before + 1);
    const [p] = pointsOf(receiver.exports.at(-1)!, 'coalmine.probe.duration', { target: 'db' });
    expect(observations.length).toBeGreaterThanOrEqual(4);
    expect(p!.count).toBe(observations.length);
  });

  for (const behaviour of [{ type: 'hang' }, { type: 'status', status: 500 }] as const) {
    const what = behaviour.type === 'hang' ? 'hangs' : 'answers 500';
    const reason = behaviour.type === 'hang' ? 'timeout' : 'http_status';
    it(`keeps probing on schedule while the collector ${what}, counts the failures, and stops in time`, async () => {
      receiver.behave(behaviour);
      const observations: Observation[] = [];
      const log: string[] = [];
      const a = agent(
        [
          'targets:',
          `  - { name: db, kind: tcp, target: "${tcpTarget}", interval: 100ms }`,
          'otlp:',
          `  endpoint: "${receiver.url}"`,
          '  interval: 200ms',
          '  timeout: 150ms',
          '  headers: { authorization: "Bearer do-not-log" }',
        ].join('\n'),
        observations,
        log,
      );
      a.start();
      await sleep(1200);
      // 100 ms apart for 1.2 s: about 12 runs (fewer on a loaded machine). A run that waited for the
      // 150 ms export would overlap the next one, which the scheduler would skip and count.
      expect(observations.length).toBeGreaterThanOrEqual(6);
      const text = await a.registry.metrics();
      expect(
        promValue(text, `coalmine_otlp_export_failures_total{reason="${reason}"}`),
      ).toBeGreaterThanOrEqual(3);
      expect(
        promValue(text, 'coalmine_scheduler_skipped_runs_total{target="db",reason="overlap"}') ?? 0,
      ).toBe(0);
      const started = performance.now();
      await a.close();
      // The final export is bounded by the 150 ms timeout.
      expect(performance.now() - started).toBeLessThan(1000);
      expect(log.filter((l) => l.startsWith('otlp: export to'))).toHaveLength(1);
      expect(log.join('\n')).not.toContain('do-not-log');
    });
  }
});

describe('coalmine run --config with an otlp section (the built binary)', () => {
  const bin = join(import.meta.dirname, '../../bin/coalmine.js');
  const dir = mkdtempSync(join(tmpdir(), 'coalmine-otlp-'));
  let receiver: OtlpReceiver;
  let tcp: Server;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    tcp = createServer((s) => s.end());
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await receiver.close();
    tcp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pushes to the collector the OTEL_* variables name, with their headers and service name', async () => {
    const config = join(dir, 'agent.yaml');
    writeFileSync(
      config,
      [
        'store: false',
        'targets:',
        `  - { name: db, kind: tcp, target: "127.0.0.1:${(tcp.address() as AddressInfo).port}", interval: 200ms }`,
        'otlp: { interval: 300ms, protocol: http/json }',
      ].join('\n'),
    );
    const port = await freePort();
    const child = spawn(process.execPath, [bin, 'run', '--config', config, '--listen', `127.0.0.1:${port}`], {
      env: {
        ...process.env,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=from%20env',
        OTEL_SERVICE_NAME: 'coalmine-eu',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=ci',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const e = await receiver.waitFor(
        'three tcp runs exported',
        (x) => pointsOf(x, 'coalmine.probe.duration', { target: 'db' }).some((p) => p.count! >= 3),
        20_000,
      );
      expect(e).toMatchObject({ path: '/v1/metrics', protocol: 'json' });
      expect(e.headers['x-api-key']).toBe('from env');
      expect(e.resource).toMatchObject({ 'service.name': 'coalmine-eu', 'deployment.environment': 'ci' });
      expect(pointsOf(e, 'coalmine.probe.duration', { target: 'db' })[0]!.attributes).toEqual({
        target: 'db',
        kind: 'tcp',
        result: 'success',
      });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).not.toContain('from env');
  });
});
