// Against a real Alertmanager (Debian's prometheus-alertmanager), started here on a free loopback port.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  haveAlertmanager,
  startAlertmanager,
  type GettableAlert,
  type RunningAlertmanager,
} from '../../../test/support/alertmanager.js';
import { waitFor } from '../../../test/support/net.js';
import { AlertmanagerNotifier } from './alertmanager.js';
import { sampleAlert } from './receivers.testkit.js';

const have = haveAlertmanager();

describe.skipIf(!have)('AlertmanagerNotifier against a real Alertmanager', () => {
  let am: RunningAlertmanager | undefined;
  let url = '';

  beforeAll(async () => {
    am = await startAlertmanager();
    url = am.url;
  }, 20_000);

  afterAll(async () => {
    await am?.stop();
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
