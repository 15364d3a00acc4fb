import { describe, expect, it } from 'vitest';
import { until } from '../../test/support/async.js';
import { parseConfig } from '../config/load.js';
import { Agent } from './agent.js';
import { AgentApiContext } from './api-context.js';

describe('agent status over the API', () => {
  it("carries each canary's schedule per coalminer, with due = attempted + behind schedule", async () => {
    const agent = new Agent(
      parseConfig(
        [
          'transports:',
          '  - { name: bus, url: "memory://api-context-test" }',
          'canaries:',
          '  - { name: c1, transport: bus, rate: 100 }',
          'coalminers:',
          '  - { name: eu, transport: bus, register: [c1] }',
        ].join('\n'),
      ),
      { processMetrics: false },
    );
    const api = new AgentApiContext(agent, 'test', 0);
    try {
      agent.start();
      await agent.messaging.ready();
      const eu = () => api.status().canaries?.find((s) => s.canary === 'c1' && s.coalminer === 'eu');
      await until(() => (eu()?.sent ?? 0) > 10, 'pings to eu');
      const s = eu()!;
      expect(s.due).toBe(s.attempted + s.behindSchedule);
      expect(s.attempted).toBeGreaterThanOrEqual(s.sent + s.sendFailed);
      expect(s.behindScheduleSeconds).toBeGreaterThanOrEqual(0);
    } finally {
      await agent.close();
    }
  });
});
