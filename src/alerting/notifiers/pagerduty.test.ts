import { afterEach, describe, expect, it } from 'vitest';
import { PAGERDUTY_EVENTS_URL, PagerDutyNotifier } from './pagerduty.js';
import { sampleAlert, startHttpReceiver, type HttpReceiver } from './receivers.testkit.js';

describe('PagerDutyNotifier', () => {
  let receiver: HttpReceiver | undefined;
  afterEach(() => receiver?.close());

  it('defaults to the Events v2 endpoint', () => {
    expect(PAGERDUTY_EVENTS_URL).toBe('https://events.pagerduty.com/v2/enqueue');
  });

  it('triggers, then resolves with the same dedup_key', async () => {
    receiver = await startHttpReceiver((r) => (r.path === '/v2/enqueue' ? 202 : 404));
    const pd = new PagerDutyNotifier({ routingKey: 'R0UT1NG', url: `${receiver.url}/v2/enqueue` });
    const signal = new AbortController().signal;
    await pd.send(sampleAlert(), signal);
    await pd.send(sampleAlert({ state: 'resolved', endsAt: Date.UTC(2026, 10, 23, 12, 5) }), signal);

    const [trigger, resolve] = receiver.requests.map((r) => JSON.parse(r.body) as Record<string, unknown>);
    expect(trigger).toMatchObject({
      routing_key: 'R0UT1NG',
      event_action: 'trigger',
      dedup_key: 'p95-latency-high{kind="http",target="eu-west"}',
      payload: {
        source: 'coalmine',
        severity: 'error',
        timestamp: '2026-11-23T12:00:00.000Z',
        custom_details: { value: '123.5', labels: { target: 'eu-west', kind: 'http' } },
      },
      links: [{ href: 'http://coalmine.example/#/targets/eu-west', text: 'coalmine dashboard' }],
    });
    expect((trigger?.payload as { summary: string }).summary).toContain('P95 latency to eu-west');
    expect(resolve).toEqual({
      routing_key: 'R0UT1NG',
      event_action: 'resolve',
      dedup_key: trigger?.dedup_key,
    });
  });

  it('gives a different dedup_key to the same rule on other labels', async () => {
    receiver = await startHttpReceiver(() => 202);
    const pd = new PagerDutyNotifier({ routingKey: 'k', url: receiver.url });
    const signal = new AbortController().signal;
    await pd.send(sampleAlert(), signal);
    await pd.send(sampleAlert({ labels: { target: 'us-east', kind: 'http' } }), signal);
    const keys = receiver.requests.map((r) => (JSON.parse(r.body) as { dedup_key: string }).dedup_key);
    expect(new Set(keys).size).toBe(2);
  });
});
