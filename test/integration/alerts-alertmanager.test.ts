// `coalmine run` (the built binary) with an alert rule and a real Alertmanager (Debian's
// prometheus-alertmanager): the agent's own evaluation timer fires when a TCP target refuses, Alertmanager
// lists the alert with our labels and a link back to the dashboard, and it resolves when the target
// comes back.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveAlertmanager, startAlertmanager, type RunningAlertmanager } from '../support/alertmanager.js';
import { freePort, waitFor } from '../support/net.js';

const have = haveAlertmanager();
const bin = join(import.meta.dirname, '../../bin/coalmine.js');

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (child?.pid === undefined || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  process.kill(child.pid, 'SIGTERM');
  await exited;
}

describe.skipIf(!have)('coalmine run notifying a real Alertmanager', () => {
  let dir = '';
  let am: RunningAlertmanager | undefined;
  let amUrl = '';
  let agent: ChildProcess | undefined;
  let service: Server | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coalmine-am-run-'));
    am = await startAlertmanager();
    amUrl = am.url;
  }, 20_000);

  afterAll(async () => {
    await stop(agent);
    await am?.stop();
    service?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('fires when the target refuses and resolves when it answers again', async () => {
    const targetPort = await freePort(); // nothing listens there yet: every probe is refused
    const listen = await freePort();
    const config = join(dir, 'agent.yaml');
    await writeFile(
      config,
      `store: false
interval: 500ms
targets:
  - { name: orders-db, kind: tcp, target: "127.0.0.1:${targetPort}" }
alerting:
  notifiers:
    - { name: am, alertmanager: { url: "${amUrl}" } }
  rules:
    - name: orders-db-down
      target: orders-db
      condition: { probeFailing: {} }
      datapoints: { m: 2, n: 3 }
      evaluateEvery: 1s
      labels: { severity: page, team: storage }
      annotations: { runbook: "https://runbooks.test/orders-db" }
`,
    );
    agent = spawn(process.execPath, [bin, 'run', '--config', config, '--listen', `127.0.0.1:${listen}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    agent.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));

    const fetchAlert = async () => (await am!.alerts()).find((a) => a.labels.alertname === 'orders-db-down');
    const alert = await waitFor(
      'the alert in Alertmanager',
      async () => {
        if (agent?.exitCode !== null) throw new Error(`coalmine exited: ${stderr}`);
        return fetchAlert();
      },
      15_000,
    );
    expect(alert.status.state).toBe('active');
    expect(alert.labels).toEqual({
      alertname: 'orders-db-down',
      target: 'orders-db',
      severity: 'page',
      team: 'storage',
    });
    expect(alert.annotations.runbook).toBe('https://runbooks.test/orders-db');
    expect(alert.annotations.summary).toBe(
      'target orders-db: probe failing (100 % of runs failed) (2 of the last 3 datapoints breached; fires at 2)',
    );
    expect(alert.generatorURL).toBe(`http://127.0.0.1:${listen}/#/target/orders-db`);
    const metrics = await (await fetch(`http://127.0.0.1:${listen}/metrics`)).text();
    expect(metrics).toContain('coalmine_alert_state{rule="orders-db-down",state="firing"} 1');
    expect(metrics).toMatch(
      /coalmine_alert_notifications_total\{notifier="am",kind="alertmanager",result="delivered"\} [1-9]/,
    );

    // The target comes back: two good windows of three later the rule resolves, and Alertmanager
    // drops the alert from its active list.
    service = createServer((s) => s.end());
    await new Promise<void>((r) => service!.listen(targetPort, '127.0.0.1', r));
    await waitFor(
      'the alert to resolve in Alertmanager',
      async () => {
        const a = await fetchAlert();
        return a === undefined || new Date(a.endsAt).getTime() <= Date.now() ? true : undefined;
      },
      15_000,
    );
    const after = await (await fetch(`http://127.0.0.1:${listen}/metrics`)).text();
    expect(after).toMatch(/coalmine_alert_state\{rule="orders-db-down",state="(resolved|ok)"\} 1/);
  }, 45_000);
});
