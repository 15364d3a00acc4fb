import { setTimeout as sleep } from 'node:timers/promises';
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
