import { afterEach, describe, expect, it } from 'vitest';
import { sampleAlert, startHttpReceiver, type HttpReceiver } from './receivers.testkit.js';
import { SlackNotifier } from './slack.js';

describe('SlackNotifier', () => {
  let receiver: HttpReceiver | undefined;
  afterEach(() => receiver?.close());

  it('posts {text, blocks} carrying the value, labels and dashboard link', async () => {
    receiver = await startHttpReceiver();
    await new SlackNotifier({ url: `${receiver.url}/services/T/B/X` }).send(
      sampleAlert(),
      new AbortController().signal,
    );
    const body = JSON.parse(receiver.requests[0]?.body ?? '') as { text: string; blocks: unknown[] };
    expect(body.text).toContain('[FIRING] p95-latency-high');
    expect(body.text).toContain('value: 123.5');
    expect(body.text).toContain('dashboard: http://coalmine.example/#/targets/eu-west');
    const blocks = JSON.stringify(body.blocks);
    expect(blocks).toContain('123.5');
    expect(blocks).toContain('target=\\"eu-west\\"');
    expect(blocks).toContain('<http://coalmine.example/#/targets/eu-west|Open the dashboard>');
  });

  it('says resolved, with the end time, and "no data" for a null value', async () => {
    receiver = await startHttpReceiver();
    const endsAt = Date.UTC(2026, 10, 23, 12, 5, 0);
    await new SlackNotifier({ url: receiver.url }).send(
      sampleAlert({ state: 'resolved', value: null, endsAt }),
      new AbortController().signal,
    );
    const body = JSON.parse(receiver.requests[0]?.body ?? '') as { text: string };
    expect(body.text).toContain('[RESOLVED] p95-latency-high');
    expect(body.text).toContain('value: no data');
    expect(body.text).toContain('until: 2026-11-23T12:05:00.000Z');
  });
});
