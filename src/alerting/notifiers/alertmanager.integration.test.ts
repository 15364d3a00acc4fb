// Against a real Alertmanager (Debian's prometheus-alertmanager), started here on a free loopback port.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../../../test/support/net.js';
import { haveCommand } from '../../../test/support/require.js';
import { AlertmanagerNotifier } from './alertmanager.js';
import { sampleAlert } from './receivers.testkit.js';

const BINARY = 'prometheus-alertmanager';
const have = haveCommand(BINARY, 'apt-get install -y prometheus-alertmanager');

// A receiver with no integrations: Alertmanager keeps the alerts and serves them, sends nothing.
const CONFIG = `route:
  receiver: blackhole
receivers:
  - name: blackhole
`;

interface GettableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  generatorURL: string;
  status: { state: string };
}

describe.skipIf(!have)('AlertmanagerNotifier against a real Alertmanager', () => {
  let dir = '';
  let child: ChildProcess | undefined;
  let url = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coalmine-am-'));
    await writeFile(join(dir, 'alertmanager.yml'), CONFIG);
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    child = spawn(
      BINARY,
      [
        `--config.file=${join(dir, 'alertmanager.yml')}`,
        `--storage.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--cluster.listen-address=',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    child.stderr?.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
    await waitFor(
      `Alertmanager ready on ${url}`,
      async () => {
        if (child?.exitCode !== null) throw new Error(`Alertmanager exited: ${log}`);
        const res = await fetch(`${url}/-/ready`);
        return res.ok ? true : undefined;
      },
      15_000,
    );
  }, 20_000);

  afterAll(async () => {
    if (child?.pid !== undefined && child.exitCode === null) {
      const exited = new Promise((r) => child?.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('accepts a firing alert and serves it back from GET /api/v2/alerts', async () => {
    const n = sampleAlert({ startsAt: Date.now() - 60_000 });
    await new AlertmanagerNotifier({ url }).send(n, AbortSignal.timeout(5000));

    const alert = await waitFor(
      'the alert in GET /api/v2/alerts',
      async () => {
        const alerts = (await (await fetch(`${url}/api/v2/alerts`)).json()) as GettableAlert[];
        return alerts.find((a) => a.labels.alertname === 'p95-latency-high');
      },
      5000,
    );
    expect(alert.labels).toEqual({ alertname: 'p95-latency-high', target: 'eu-west', kind: 'http' });
    expect(alert.annotations).toMatchObject({ summary: n.summary, value: '123.5', threshold: '100 ms' });
    expect(alert.generatorURL).toBe(n.dashboardUrl);
    expect(alert.status.state).toBe('active');
    expect(Date.parse(alert.startsAt)).toBe(n.startsAt);
  });

  it('takes a resolved alert off the active list', async () => {
    const startsAt = Date.now() - 60_000;
    const base = { rule: 'resolves-test', startsAt, labels: { target: 'x' } };
    const am = new AlertmanagerNotifier({ url });
    const listed = async (): Promise<GettableAlert[]> => {
      const res = await fetch(`${url}/api/v2/alerts?active=true&filter=alertname%3D%22resolves-test%22`);
      expect(res.status).toBe(200);
      return (await res.json()) as GettableAlert[];
    };
    await am.send(sampleAlert(base), AbortSignal.timeout(5000));
    await waitFor('the firing alert', async () => ((await listed()).length === 1 ? true : undefined), 5000);
    await am.send(
      sampleAlert({ ...base, state: 'resolved', endsAt: Date.now() - 1000 }),
      AbortSignal.timeout(5000),
    );
    await waitFor(
      'the resolved alert to leave the active list',
      async () => ((await listed()).length === 0 ? true : undefined),
      5000,
    );
  });
});
