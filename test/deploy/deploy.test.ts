import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { Agent } from '../../src/agent/agent.js';
import { main } from '../../src/cli/main.js';
import { parseConfig } from '../../src/config/load.js';
import { selfSignedCert } from '../support/certs.js';
import { haveCommand } from '../support/require.js';
import { waitFor } from '../support/net.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const deploy = join(root, 'deploy');
const at = (...parts: string[]) => join(deploy, ...parts);

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

type Json = Record<string, unknown>;

/** The metric names a PromQL expression reads (not functions, labels, keywords or durations). */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\w+/g, ' ');
  const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w.])[a-zA-Z_:][\w:]*/g)) {
    const name = m[0];
    const isCall = /^\s*\(/.test(stripped.slice(m.index + name.length));
    if (!isCall && !keywords.has(name.toLowerCase())) names.add(name);
  }
  return [...names];
}

/** Every PromQL expression in the dashboard: panel targets and template-variable queries. */
function dashboardExprs(dashboard: Json): string[] {
  const exprs: string[] = [];
  const visit = (panels: unknown) => {
    for (const panel of (panels as Json[] | undefined) ?? []) {
      for (const t of (panel.targets as Json[] | undefined) ?? []) exprs.push(String(t.expr));
      visit(panel.panels);
    }
  };
  visit(dashboard.panels);
  const templating = dashboard.templating as { list: Json[] };
  for (const v of templating.list) {
    if (v.type !== 'query') continue;
    const query = String((v.query as Json).query);
    // label_values(metric, label) reads the metric.
    const m = /^label_values\((.+),\s*\w+\)$/.exec(query);
    exprs.push(m ? m[1]! : query);
  }
  return exprs;
}

const RULE_FILES = ['prometheus/rules.yml', 'prometheus/fleet.rules.yml'];

function promRules(): { alert: string; expr: string }[] {
  return RULE_FILES.flatMap((f) => {
    const rules = parseYaml(readFileSync(at(f), 'utf8')) as {
      groups: { rules: { alert: string; expr: string }[] }[];
    };
    return rules.groups.flatMap((g) => g.rules);
  });
}

function ruleExprs(): string[] {
  return promRules().map((r) => r.expr);
}

describe('deploy/prometheus and deploy/alertmanager', () => {
  const promtool = haveCommand(
    'promtool',
    'apt-get install prometheus (Debian) or get it from prometheus.io',
  );

  it.skipIf(!promtool)('prometheus.yml passes promtool check config', () => {
    expect(run('promtool', ['check', 'config', 'deploy/prometheus/prometheus.yml'])).toContain('SUCCESS');
  });

  it.skipIf(!promtool)('rules.yml and fleet.rules.yml pass promtool check rules', () => {
    for (const f of RULE_FILES)
      expect(run('promtool', ['check', 'rules', `deploy/${f}`])).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('rules.yml is exactly what `coalmine alerts export` makes of the agent config (npm run deploy:rules)', async () => {
    const out: string[] = [];
    const code = await main(
      ['node', 'coalmine', 'alerts', 'export', '--config', 'deploy/coalmine/config.yaml'],
      {
        out: (l) => out.push(l),
        err: (l) => out.push(`stderr: ${l}`),
        isTty: false,
      },
    );
    expect(code).toBe(0);
    expect(readFileSync(at('prometheus/rules.yml'), 'utf8')).toBe(`${out.join('\n')}\n`);
  });

  it.skipIf(!promtool)('rules fire and stay quiet as rules.test.yml expects', () => {
    expect(run('promtool', ['test', 'rules', 'deploy/prometheus/rules.test.yml'])).toContain('SUCCESS');
  });

  it('has a rule for each condition an operator must hear about', () => {
    const config = parseConfig(readFileSync(at('coalmine/config.yaml'), 'utf8'), 'config.yaml');
    const kinds = new Set(
      config.alerting!.rules.map((r) => `${r.target ? 'target' : 'flow'}:${r.condition.kind}`),
    );
    expect([...kinds]).toEqual(
      expect.arrayContaining([
        'target:probeFailing',
        'target:latency',
        'target:certExpiringWithin',
        'flow:latency',
        'flow:lossRatio',
        'flow:noData',
      ]),
    );
    expect(promRules().map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        ...config.alerting!.rules.map((r) => r.name),
        'CoalmineAgentDown',
        'CoalmineTransportDown',
      ]),
    );
  });

  const amtool = haveCommand('amtool', 'apt-get install prometheus-alertmanager (Debian)');
  it.skipIf(!amtool)('alertmanager.yml passes amtool check-config', () => {
    expect(run('amtool', ['check-config', 'deploy/alertmanager/alertmanager.yml'])).toContain('SUCCESS');
  });
});

describe('metric names in the dashboard and rules', () => {
  let agent: Agent;
  let exported: Set<string>;
  let tcp: Server;
  let https: ReturnType<typeof createHttpsServer>;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'coalmine-deploy-'));
    const cert = selfSignedCert(dir, 'server');
    https = createHttpsServer({ key: cert.key, cert: cert.cert }, (_req, res) => res.end('ok'));
    tcp = createTcpServer((s) => s.end());
    const listen = (s: Server) =>
      new Promise<number>((done) => s.listen(0, '127.0.0.1', () => done((s.address() as AddressInfo).port)));
    const [httpsPort, tcpPort] = await Promise.all([listen(https), listen(tcp)]);
    agent = new Agent(
      parseConfig(
        [
          'targets:',
          `  - { name: web, kind: http, target: "https://127.0.0.1:${httpsPort}/", tls: { insecureSkipVerify: true } }`,
          `  - { name: db, kind: tcp, target: "127.0.0.1:${tcpPort}" }`,
          'transports:',
          '  - { name: bus, url: "memory://deploy-test" }',
          'canaries:',
          '  - { name: c1, transport: bus, rate: 50 }',
          'coalminers:',
          '  - { name: eu, transport: bus, register: [c1], region: eu-west-1 }',
          'alerting:',
          '  notifiers: [{ name: am, alertmanager: { url: "http://127.0.0.1:9" } }]',
          '  rules: [{ name: db-down, target: db, condition: { probeFailing: {} } }]',
        ].join('\n'),
      ),
      { processMetrics: false },
    );
    agent.start();
    await agent.messaging.ready();
    const results = await agent.check();
    expect(results.map((o) => [o.name, o.result.ok])).toEqual([
      ['web', true],
      ['db', true],
    ]);
    const text = await waitFor('a received ping', async () => {
      const t = await agent.registry.metrics();
      return /coalmine_messages_received_total\{[^}]*\} [1-9]/.test(t) ? t : undefined;
    });
    // Every metric the registry declares, with or without series yet (no ping was lost, so
    // coalmine_messages_lost_total has none); histograms are read as name_bucket, _sum and _count.
    exported = new Set(
      [...text.matchAll(/^# TYPE ([a-zA-Z_:][\w:]*) (\w+)$/gm)].flatMap(([, name, type]) =>
        type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!],
      ),
    );
  });

  afterAll(async () => {
    await agent?.close();
    await new Promise((done) => (https ? https.close(done) : done(undefined)));
    await new Promise((done) => (tcp ? tcp.close(done) : done(undefined)));
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds metric names in PromQL', () => {
    expect(
      metricNames(
        'histogram_quantile(0.95, sum by (le, target) (rate(a_bucket{from="intended", x=~"$v"}[$__rate_interval]))) / on(x) b_total > bool 1',
      ).sort(),
    ).toEqual(['a_bucket', 'b_total']);
  });

  it('the Grafana dashboard parses and reads only metrics the agent exports', () => {
    const dashboard = JSON.parse(readFileSync(at('grafana/dashboards/coalmine.json'), 'utf8')) as Json;
    expect(dashboard.uid).toBe('coalmine');
    const exprs = dashboardExprs(dashboard);
    const used = new Set(exprs.flatMap(metricNames));
    for (const name of [
      'coalmine_probe_duration_seconds_bucket',
      'coalmine_message_latency_seconds_bucket',
      'probe_success',
      'coalmine_messages_lost_total',
      'coalmine_messages_received_total',
      'probe_http_duration_seconds',
    ])
      expect(used).toContain(name);
    expect(exprs.some((e) => e.includes('from="intended"'))).toBe(true);
    for (const p of [0.9, 0.95, 0.99])
      expect(exprs.some((e) => e.includes(`histogram_quantile(${p},`))).toBe(true);
    expect([...used].filter((name) => !exported.has(name))).toEqual([]);
  });

  it("the alerting rules read only metrics the agent exports (and Prometheus' own `up`)", () => {
    const used = new Set(ruleExprs().flatMap(metricNames));
    expect(used).toContain('probe_ssl_earliest_cert_expiry');
    expect([...used].filter((name) => name !== 'up' && !exported.has(name))).toEqual([]);
  });
});

describe('deploy files', () => {
  const yamlFiles = filesUnder(deploy).filter((f) => /\.ya?ml$/.test(f));

  it('every YAML file parses', () => {
    expect(yamlFiles.length).toBeGreaterThan(10);
    for (const file of yamlFiles) {
      const docs = parseAllDocuments(readFileSync(file, 'utf8'));
      const list = Array.isArray(docs) ? docs : [docs];
      for (const doc of list)
        expect(doc.errors.map((e) => `${relative(root, file)}: ${e.message}`)).toEqual([]);
    }
  });

  it('Grafana provisioning points at the dashboards folder and Prometheus', () => {
    const ds = parseYaml(readFileSync(at('grafana/provisioning/datasources/prometheus.yaml'), 'utf8')) as {
      datasources: { type: string; url: string }[];
    };
    expect(ds.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    const dash = parseYaml(readFileSync(at('grafana/provisioning/dashboards/coalmine.yaml'), 'utf8')) as {
      providers: { options: { path: string } }[];
    };
    expect(dash.providers[0]?.options.path).toBe('/var/lib/grafana/dashboards');
  });

  it('each Kubernetes agent config in the ConfigMap is valid, and each Deployment mounts one', () => {
    const cm = parseYaml(readFileSync(at('kubernetes/configmap.yaml'), 'utf8')) as {
      kind: string;
      metadata: { name: string };
      data: Record<string, string>;
    };
    expect(cm.kind).toBe('ConfigMap');
    const keys = Object.keys(cm.data);
    expect(keys.length).toBeGreaterThanOrEqual(2);
    for (const key of keys) {
      const config = parseConfig(cm.data[key]!, key);
      expect(config.targets.length).toBeGreaterThan(0);
      expect(config.messaging.coalminers.length).toBe(1);
    }

    const deployments = readdirSync(at('kubernetes'))
      .filter((f) => f.startsWith('deployment-'))
      .map((f) => parseYaml(readFileSync(at('kubernetes', f), 'utf8')) as Json);
    expect(deployments.length).toBeGreaterThanOrEqual(2);
    const mounted = deployments.map((d) => {
      expect(d.kind).toBe('Deployment');
      const spec = (d.spec as { template: { spec: Json } }).template.spec;
      const volumes = spec.volumes as { name: string; configMap?: { name: string } }[];
      expect(volumes.find((v) => v.name === 'config')?.configMap?.name).toBe(cm.metadata.name);
      const container = (spec.containers as { volumeMounts: { name: string; subPath?: string }[] }[])[0]!;
      return container.volumeMounts.find((m) => m.name === 'config')?.subPath;
    });
    expect(mounted.sort()).toEqual(keys.sort());

    const kinds = readdirSync(at('kubernetes')).map(
      (f) => (parseYaml(readFileSync(at('kubernetes', f), 'utf8')) as { kind: string }).kind,
    );
    expect(kinds).toEqual(expect.arrayContaining(['Service', 'ServiceMonitor', 'ConfigMap']));
  });

  it('the docker-compose agent config is valid', () => {
    expect(parseConfig(readFileSync(at('coalmine/config.yaml'), 'utf8')).targets.length).toBeGreaterThan(0);
  });

  it('the Dockerfile is multi-stage and runs as a user that is not root', () => {
    const lines = readFileSync(join(root, 'Dockerfile'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    expect(lines.filter((l) => /^FROM\s/i.test(l)).length).toBeGreaterThanOrEqual(2);
    expect(lines.some((l) => /^RUN .*npm ci/.test(l))).toBe(true);
    expect(lines.some((l) => /^RUN .*npm run build/.test(l))).toBe(true);
    const users = lines.filter((l) => /^USER\s/i.test(l)).map((l) => l.split(/\s+/)[1]!);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users.at(-1)!.split(':')[0]);
    // The last USER must come after the last FROM, or the final image runs as root.
    const lastFrom = lines.findLastIndex((l) => /^FROM\s/i.test(l));
    expect(lines.findLastIndex((l) => /^USER\s/i.test(l))).toBeGreaterThan(lastFrom);
    expect(existsSync(join(root, '.dockerignore'))).toBe(true);
  });

  it('docker-compose services reference files that exist', () => {
    const compose = parseYaml(readFileSync(at('docker-compose.yml'), 'utf8')) as {
      services: Record<string, { build?: { context: string; dockerfile?: string }; volumes?: string[] }>;
    };
    expect(Object.keys(compose.services).sort()).toEqual([
      'alertmanager',
      'coalmine',
      'grafana',
      'prometheus',
    ]);
    const paths: string[] = [];
    for (const service of Object.values(compose.services)) {
      if (service.build) {
        const context = resolve(deploy, service.build.context);
        paths.push(context, join(context, service.build.dockerfile ?? 'Dockerfile'));
      }
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('.') || source.startsWith('/')) paths.push(resolve(deploy, source));
      }
    }
    expect(paths.length).toBeGreaterThan(5);
    expect(paths.filter((p) => !existsSync(p)).map((p) => relative(root, p))).toEqual([]);
  });
});
