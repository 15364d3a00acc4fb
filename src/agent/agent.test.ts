import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { Agent } from './agent.js';

describe('agent with canaries and coalminers from config', () => {
  it('runs them over a transport and exports their metrics', async () => {
    const agent = new Agent(
      parseConfig(
        [
          'transports:',
          '  - { name: bus, url: "memory://agent-test" }',
          'canaries:',
          '  - { name: c1, transport: bus, rate: 50 }',
          'coalminers:',
          '  - { name: eu, transport: bus, register: [c1], region: eu-west-1 }',
          '  - { name: us, transport: bus, register: [c1], region: us-east-1 }',
        ].join('\n'),
      ),
      { processMetrics: false },
    );
    agent.start();
    await agent.messaging.ready();
    await sleep(1500);
    const text = await agent.registry.metrics();
    await agent.close();
    for (const [coalminer, region] of [
      ['eu', 'eu-west-1'],
      ['us', 'us-east-1'],
    ]) {
      const received = new RegExp(
        `coalmine_messages_received_total\\{canary="c1",coalminer="${coalminer}",transport="memory",region="${region}"\\} (\\d+)`,
      ).exec(text);
      expect(Number(received?.[1])).toBeGreaterThan(20);
      expect(text).toMatch(
        new RegExp(
          `coalmine_messages_sent_total\\{canary="c1",coalminer="${coalminer}",transport="memory"\\} \\d+`,
        ),
      );
      expect(text).toMatch(
        new RegExp(
          `coalmine_message_latency_seconds_count\\{canary="c1",coalminer="${coalminer}",transport="memory",region="${region}",from="intended"\\} \\d+`,
        ),
      );
    }
    expect(text).toContain('coalmine_transport_up{transport="memory",url="memory://agent-test"} 1');
    expect(text).toMatch(/coalmine_flows\{coalminer="eu"\} 1/);
  });
});

describe('agent scheduler metrics', () => {
  it('counts a late run against its target and buckets lateness beyond 1 s', async () => {
    const server = createServer((s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    // The agent's clock jumps 1.5 s ahead once the target has run: to the scheduler, that run is late.
    let offsetNs = 0n;
    const clock = {
      nowNs: () => process.hrtime.bigint() + offsetNs,
      wallMs: () => Date.now() + Number(offsetNs / 1_000_000n),
    };
    const agent = new Agent(
      parseConfig(
        [
          'targets:',
          `  - { name: punctual, kind: tcp, target: "127.0.0.1:${port}", interval: 1h }`,
          `  - { name: slow, kind: tcp, target: "127.0.0.1:${port}", interval: 1s }`,
        ].join('\n'),
      ),
      { processMetrics: false, clock },
    );
    try {
      agent.start();
      await sleep(300);
      offsetNs = 1_500_000_000n;
      const value = (text: string, series: string) =>
        Number(new RegExp(`^${series.replace(/[{}"+.]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
      let text = '';
      for (let i = 0; i < 40; i++) {
        await sleep(100);
        text = await agent.registry.metrics();
        if (value(text, 'coalmine_scheduler_late_runs_total{target="slow"}') >= 1) break;
      }
      expect(value(text, 'coalmine_scheduler_late_runs_total{target="slow"}')).toBeGreaterThanOrEqual(1);
      // A target that never ran late has no series at all.
      expect(text).not.toContain('coalmine_scheduler_late_runs_total{target="punctual"}');
      const upTo1 = value(text, 'coalmine_scheduler_lateness_seconds_bucket{le="1"}');
      const upTo2_5 = value(text, 'coalmine_scheduler_lateness_seconds_bucket{le="2.5"}');
      expect(upTo2_5).toBeGreaterThan(upTo1);
    } finally {
      await agent.close();
      server.close();
    }
  });
});
