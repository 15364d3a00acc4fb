import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { haveCommand } from '../../test/support/require.js';
import { alertsCommand } from '../cli/commands/alerts.js';
import type { Io } from '../cli/main.js';
import { ConfigError, UsageError } from '../core/errors.js';
import { toPrometheusRules } from './prometheus-export.js';
import { alertingConfigSchema, type AlertRule } from './rules.js';

const dir = mkdtempSync(join(tmpdir(), 'coalmine-prom-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const promtool = haveCommand('promtool', 'apt-get install prometheus (it ships promtool)');

const flow = { canary: 'a', coalminer: 'b' };
const everyKind = alertingConfigSchema.parse({
  rules: [
    { name: 'lat', flow, condition: { latency: { percentile: 95, above: 0.5 } }, for: '1m' },
    { name: 'probe-lat', target: 'we"b', condition: { latency: { percentile: 99, above: 2 } } },
    { name: 'loss', flow, condition: { lossRatio: { above: 0.1 } }, labels: { severity: 'page' } },
    { name: 'dup', flow, condition: { duplicateRatio: { above: 0.01 } } },
    { name: 'reorder', flow, condition: { reorderRatio: { above: 0.01 } } },
    { name: 'errors', target: 'web', condition: { errorRate: { above: 0.1 } } },
    { name: 'send-errors', flow, condition: { errorRate: { above: 0.1 } } },
    {
      name: 'failing',
      target: 'web',
      condition: { probeFailing: {} },
      datapoints: { m: 3, n: 5 },
      evaluateEvery: '30s',
    },
    { name: 'quiet', flow, condition: { noData: { for: '5m' } } },
    { name: 'quiet-probe', target: 'web', condition: { noData: { for: '90s' } } },
    {
      name: 'cert',
      target: 'web',
      condition: { certExpiringWithin: { days: 14 } },
      annotations: { runbook: 'x' },
    },
  ],
}).rules;

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const summary = { summary: 's' };
/** A flow's series labels, as a coalminer exports them. */
const f = 'canary="a",coalminer="b",transport="t",region="r"';
const alert = (labels: Record<string, string>) => [{ exp_labels: labels, exp_annotations: summary }];
const at = (minute: number, alertname: string, exp_alerts: unknown[]) => ({
  eval_time: `${minute}m`,
  alertname,
  exp_alerts,
});

/** Exports `rules`, then runs `promtool test rules` on them with 1-minute series and evaluations. */
function promtoolTest(
  name: string,
  rules: AlertRule[],
  input_series: unknown[],
  alert_rule_test: unknown[],
): void {
  write(`${name}.rules.yml`, toPrometheusRules(rules));
  const test = {
    rule_files: [`${name}.rules.yml`],
    evaluation_interval: '1m',
    tests: [{ interval: '1m', input_series, alert_rule_test }],
  };
  const file = write(`${name}.test.yml`, stringify(test));
  const r = spawnSync('promtool', ['test', 'rules', file], { encoding: 'utf8', cwd: dir });
  expect(r.stdout + r.stderr).toContain('SUCCESS');
  expect(r.status).toBe(0);
}

describe('toPrometheusRules', () => {
  it('writes one alerting rule per rule, with for, labels and a summary naming the threshold', () => {
    const out = toPrometheusRules(everyKind);
    expect(out).toContain('name: coalmine');
    expect(out).toContain(
      'histogram_quantile(0.95, sum by (le) (rate(coalmine_message_latency_seconds_bucket{canary="a",coalminer="b",from="intended"}[1m]))) > 0.5',
    );
    expect(out).toContain('sum_over_time((max(probe_success{target="web"}) == bool 0)[149999ms:30s]) >= 3');
    expect(out).toContain('probe_ssl_earliest_cert_expiry{target="web"}) - time() < 1209600');
    expect(out).toContain('for: 1m');
    expect(out).toContain('severity: page');
    expect(out).toContain('p95 latency of flow a -> b above 0.5s');
    expect(out).toContain('runbook: x');
  });

  it.runIf(promtool)('passes promtool check rules for every condition kind', () => {
    const file = write('every.rules.yml', toPrometheusRules(everyKind));
    const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toContain(`SUCCESS: ${everyKind.length} rules found`);
    expect(r.status).toBe(0);
  });

  it.runIf(promtool)(
    'fires latency and loss rules when they breach, and M-of-N only after M breaches',
    () => {
      const rules = alertingConfigSchema.parse({
        rules: [
          {
            name: 'slow',
            flow,
            condition: { latency: { percentile: 95, above: 0.5 } },
            annotations: summary,
          },
          { name: 'lossy', flow, condition: { lossRatio: { above: 0.1 } }, annotations: summary },
          {
            name: 'flaky',
            target: 'web',
            condition: { errorRate: { above: 0.1 } },
            datapoints: { m: 2, n: 3 },
            evaluateEvery: '1m',
            annotations: summary,
          },
        ],
      }).rules;
      promtoolTest(
        'fire',
        rules,
        [
          // Fast (under 0.1s) until minute 5, then every ping between 0.1s and 1s.
          {
            series: `coalmine_message_latency_seconds_bucket{${f},from="intended",le="0.1"}`,
            values: '0+10x5 50x10',
          },
          {
            series: `coalmine_message_latency_seconds_bucket{${f},from="intended",le="1"}`,
            values: '0+10x15',
          },
          {
            series: `coalmine_message_latency_seconds_bucket{${f},from="intended",le="+Inf"}`,
            values: '0+10x15',
          },
          // Nothing lost until minute 5, then 5 lost for every 10 received.
          { series: `coalmine_messages_received_total{${f}}`, values: '0+10x15' },
          { series: `coalmine_messages_lost_total{${f}}`, values: '0x5 5+5x9' },
          // Failures in the minutes ending at 5, 8 and 9: breaches at 5 (alone) then 8 and 9.
          {
            series: 'coalmine_probes_total{kind="http",target="web",result="success"}',
            values: '0+10x15',
          },
          {
            series: 'coalmine_probes_total{kind="http",target="web",result="timeout"}',
            values: '0x4 5x2 10 15x6',
          },
        ],
        [
          at(5, 'slow', []),
          at(6, 'slow', alert(flow)),
          at(5, 'lossy', []),
          at(6, 'lossy', alert(flow)),
          at(5, 'flaky', []),
          at(6, 'flaky', []),
          at(8, 'flaky', []),
          at(9, 'flaky', alert({ target: 'web' })),
        ],
      );
    },
  );

  it.runIf(promtool)(
    'counts a window without traffic as no data: a breach under missingData breaching, nothing otherwise',
    () => {
      const loss = { flow, condition: { lossRatio: { above: 0.1 } }, annotations: summary };
      const rules = alertingConfigSchema.parse({
        rules: [
          { name: 'gap-breaches', ...loss, missingData: 'breaching' },
          { name: 'gap-quiet', ...loss },
          { name: 'gap-ignored', ...loss, missingData: 'ignore' },
          {
            name: 'gap-2-of-3',
            target: 'web',
            condition: { errorRate: { above: 0.1 } },
            datapoints: { m: 2, n: 3 },
            evaluateEvery: '1m',
            missingData: 'breaching',
            annotations: summary,
          },
          {
            name: 'no-series',
            target: 'gone',
            condition: { probeFailing: {} },
            missingData: 'breaching',
            annotations: summary,
          },
        ],
      }).rules;
      promtoolTest(
        'gap',
        rules,
        [
          // Pings and probe runs until minute 5, none lost or failed; then the counters stand still.
          { series: `coalmine_messages_received_total{${f}}`, values: '0+10x5 50x10' },
          { series: `coalmine_messages_lost_total{${f}}`, values: '0x15' },
          {
            series: 'coalmine_probes_total{kind="http",target="web",result="success"}',
            values: '0+10x5 50x10',
          },
          { series: 'coalmine_probes_total{kind="http",target="web",result="timeout"}', values: '0x15' },
        ],
        [
          at(3, 'gap-breaches', []),
          at(3, 'gap-2-of-3', []),
          at(10, 'gap-breaches', alert(flow)),
          at(10, 'gap-quiet', []),
          at(10, 'gap-ignored', []),
          at(10, 'gap-2-of-3', alert({ target: 'web' })),
          at(3, 'no-series', alert({ target: 'gone' })),
        ],
      );
    },
  );
});

describe('coalmine alerts export', () => {
  const run = async (...args: string[]) => {
    const lines: string[] = [];
    const io: Io = { out: (l) => lines.push(l), err: (l) => lines.push(l), isTty: false };
    const program = new Command('coalmine').exitOverride();
    alertsCommand(program, io);
    for (const c of program.commands)
      for (const s of c.commands) s.exitOverride().configureOutput({ writeErr: () => {} });
    await program.parseAsync(args, { from: 'user' });
    return lines.join('\n');
  };
  const config = write(
    'coalmine.yml',
    stringify({
      targets: [],
      alerting: { rules: [{ name: 'loss', flow, condition: { lossRatio: { above: 0.1 } } }] },
    }),
  );

  it('prints the rule file of the alerting: section', async () => {
    const out = await run('alerts', 'export', '--config', config, '--format', 'prometheus');
    expect(out + '\n').toBe(
      `# Generated by \`coalmine alerts export --config ${config}\`: edit the alerting: rules there and export again.\n` +
        toPrometheusRules(
          alertingConfigSchema.parse({
            rules: [{ name: 'loss', flow, condition: { lossRatio: { above: 0.1 } } }],
          }).rules,
        ),
    );
    if (promtool) execFileSync('promtool', ['check', 'rules', write('cli.rules.yml', out + '\n')]);
  });

  it('rejects an unknown format, a missing section, a bad rule and a missing file (exit 2)', async () => {
    await expect(run('alerts', 'export', '--config', config, '--format', 'json')).rejects.toBeInstanceOf(
      UsageError,
    );
    await expect(run('alerts', 'export', '--config', write('none.yml', 'targets: []\n'))).rejects.toThrow(
      /no alerting: section/,
    );
    const bad = write('bad.yml', stringify({ alerting: { rules: [{ name: 'x', flow, condition: {} }] } }));
    const err = await run('alerts', 'export', '--config', bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.join('\n')).toMatch(
      /alerting\.rules\.0\.condition: exactly one condition/,
    );
    await expect(run('alerts', 'export', '--config', join(dir, 'missing.yml'))).rejects.toBeInstanceOf(
      ConfigError,
    );
  });
});
