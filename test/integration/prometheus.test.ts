import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { startServer, type AgentServer } from '../../src/api/server.js';
import { parseConfig } from '../../src/config/load.js';
import { startExampleService, type ExampleService } from '../../src/target/example-service.js';
import { haveCommand } from '../support/require.js';
import { freePort, waitFor } from '../support/net.js';

const hasPromtool = haveCommand('promtool', 'apt-get install prometheus');
const hasPrometheus = haveCommand('prometheus', 'apt-get install prometheus');

describe.skipIf(!hasPromtool || !hasPrometheus)('a real Prometheus scraping the agent', () => {
  let dir: string;
  let agent: Agent;
  let server: AgentServer;
  let service: ExampleService;
  let tcpServer: Server;
  let prometheus: ChildProcess | undefined;
  let promUrl: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'coalmine-prom-'));
    service = await startExampleService({ host: '127.0.0.1', port: 0, notesFile: join(dir, 'notes.txt') });
    tcpServer = createServer((s) => s.end());
    await new Promise<void>((r) => tcpServer.listen(0, '127.0.0.1', r));
    const tcpPort = (tcpServer.address() as AddressInfo).port;
    const config = parseConfig(
      [
        'interval: 1s',
        'metrics: { compat: [latency404] }',
        'targets:',
        `  - { name: web, kind: http, target: "${service.url}/health" }`,
        `  - { name: port, kind: tcp, target: "127.0.0.1:${tcpPort}" }`,
        `  - { name: closed, kind: tcp, target: "127.0.0.1:1" }`,
        'transports: [{ name: bus, url: "memory://prometheus-test" }]',
        'canaries: [{ name: c1, transport: bus, rate: 20, echo: true }]',
        'coalminers: [{ name: eu, transport: bus, register: [c1], region: eu-west-1 }]',
        'alerting:',
        '  rules:',
        '    - { name: closed-down, target: closed, condition: { probeFailing: {} }, evaluateEvery: 1s }',
        '    - { name: web-down, target: web, condition: { probeFailing: {} }, evaluateEvery: 1s }',
      ].join('\n'),
    );
    agent = new Agent(config);
    server = await startServer(agent, '127.0.0.1', 0);
    agent.start();
    await agent.check();
    await agent.messaging.ready();
    await new Promise((r) => setTimeout(r, 1000));

    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        'scrape_configs:',
        '  - job_name: coalmine',
        `    static_configs: [{ targets: ["127.0.0.1:${server.port}"] }]`,
      ].join('\n'),
    );
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
      ],
      { stdio: 'ignore' },
    );
  });

  /** An instant PromQL query against the test's Prometheus. */
  const query = async (q: string) => {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = (await res.json()) as {
      data: { result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    return body.data.result;
  };

  afterAll(async () => {
    prometheus?.kill('SIGTERM');
    await Promise.all([agent?.close(), server?.close(), service?.close()]);
    tcpServer?.close();
    if (prometheus && prometheus.exitCode === null) await new Promise((r) => prometheus!.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves metrics that promtool finds clean', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toContain('probe_success{target="web",kind="http"} 1');
    expect(text).toContain('probe_success{target="closed",kind="tcp"} 0');
    expect(text).toMatch(/probe_http_duration_seconds\{target="web",phase="processing"\} \d/);
    expect(text).toContain('coalmine_probes_total{kind="tcp",target="closed",result="refused"}');
    expect(text).toMatch(/http_health_check_total\{target="web",status="success"\} \d/);
    for (const family of [
      'coalmine_message_latency_seconds_bucket',
      'coalmine_messages_received_total',
      'coalmine_message_rtt_seconds_bucket',
      'coalmine_publish_ack_seconds_bucket',
      'coalmine_transport_up',
      'coalmine_messages_in_flight',
    ]) {
      expect(text).toContain(family);
    }
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('is scraped, and PromQL over our series gives the probe results', async () => {
    const up = await waitFor(
      'prometheus to scrape the agent',
      async () => {
        const r = await query('up{job="coalmine"}');
        return r[0]?.value[1] === '1' ? r : undefined;
      },
      30_000,
    );
    expect(up).toHaveLength(1);
    const success = await waitFor('probe_success series', async () => {
      const r = await query('probe_success');
      return r.length === 3 ? r : undefined;
    });
    const byTarget = Object.fromEntries(success.map((s) => [s.metric.target, s.value[1]]));
    expect(byTarget).toEqual({ web: '1', port: '1', closed: '0' });
    const p95 = await waitFor(
      'a histogram quantile',
      async () => {
        const r = await query(
          // Per kind by default (metrics.targetBuckets: false); web is the only http target.
          'histogram_quantile(0.95, sum by (le) (rate(coalmine_probe_duration_seconds_bucket{kind="http"}[10s])))',
        );
        const v = Number(r[0]?.value[1]);
        return Number.isFinite(v) && v > 0 ? v : undefined;
      },
      30_000,
    );
    expect(p95).toBeLessThan(0.5);
  });

  it("serves alert states that the Grafana dashboard's alert panel reads right", async () => {
    const dashboard = JSON.parse(
      readFileSync(join(import.meta.dirname, '../../deploy/grafana/dashboards/coalmine.json'), 'utf8'),
    ) as { panels: { title: string; targets?: { expr: string }[] }[] };
    const expr = dashboard.panels.find((p) => p.title === 'Alert rules by state')!.targets![0]!.expr;
    // The closed port's rule fires (2), the healthy target's stays ok (0).
    const codes = await waitFor(
      'both alert rules in Prometheus',
      async () => {
        const r = await query(expr);
        const byRule = Object.fromEntries(r.map((s) => [s.metric.rule, s.value[1]]));
        return byRule['closed-down'] === '2' && byRule['web-down'] === '0' ? byRule : undefined;
      },
      30_000,
    );
    expect(codes).toEqual({ 'closed-down': '2', 'web-down': '0' });
    const value = await query('coalmine_alert_value{rule="closed-down"}');
    expect(value[0]?.value[1]).toBe('1');
  });
});
