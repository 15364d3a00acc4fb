import { afterEach, describe, expect, it } from 'vitest';
import { AlertmanagerNotifier } from './alertmanager.js';
import { sampleAlert, startHttpReceiver, type HttpReceiver } from './receivers.testkit.js';

describe('AlertmanagerNotifier', () => {
  let receiver: HttpReceiver | undefined;
  afterEach(() => receiver?.close());

  it('posts a v2 postableAlert list to /api/v2/alerts', async () => {
    receiver = await startHttpReceiver((r) => (r.path === '/api/v2/alerts' ? 200 : 404));
    await new AlertmanagerNotifier({
      url: `${receiver.url}/`,
      now: () => Date.UTC(2026, 10, 23, 12, 1),
    }).send(sampleAlert(), new AbortController().signal);
    const body = JSON.parse(receiver.requests[0]?.body ?? '') as unknown[];
    expect(body).toEqual([
      {
        labels: { alertname: 'p95-latency-high', target: 'eu-west', kind: 'http' },
        annotations: {
          summary: 'P95 latency to eu-west above 100 ms in 2 of the last 3 datapoints',
          value: '123.5',
          threshold: '100 ms',
        },
        startsAt: '2026-11-23T12:00:00.000Z',
        // Valid for 4 minutes after the send: re-sent every minute while firing, resolved by
        // Alertmanager on its own if the agent stops sending.
        endsAt: '2026-11-23T12:05:00.000Z',
        generatorURL: 'http://coalmine.example/#/targets/eu-west',
      },
    ]);
  });

  it('sends endsAt for a resolved alert, and a label cannot override alertname', async () => {
    receiver = await startHttpReceiver();
    const n = sampleAlert({
      state: 'resolved',
      endsAt: Date.UTC(2026, 10, 23, 12, 5),
      labels: { alertname: 'x' },
    });
    await new AlertmanagerNotifier({ url: receiver.url }).send(n, new AbortController().signal);
    const [alert] = JSON.parse(receiver.requests[0]?.body ?? '') as { labels: object; endsAt: string }[];
    expect(alert?.endsAt).toBe('2026-11-23T12:05:00.000Z');
    expect(alert?.labels).toEqual({ alertname: 'p95-latency-high' });
  });
});
