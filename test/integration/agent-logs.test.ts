import { describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/core/log.js';
import { startRelay } from '../../src/transports/websocket/relay.js';
import { waitFor } from '../support/net.js';

describe('the agent logs what its messaging does', () => {
  it('registrations at info, a lost relay and its return at warn, with the names of who is talking', async () => {
    let relay = await startRelay({ host: '127.0.0.1', port: 0 });
    const port = relay.port;
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({
      format: 'json',
      stream: { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) },
    });
    const agent = new Agent(
      parseConfig(
        [
          'transports:',
          `  - { name: relay, url: "ws://127.0.0.1:${port}" }`,
          'canaries:',
          '  - { name: c1, transport: relay, rate: 20 }',
          'coalminers:',
          '  - { name: eu, transport: relay, register: [c1], region: eu-west-1 }',
        ].join('\n'),
      ),
      { processMetrics: false, log },
    );
    const has = (msg: string) => async () => (lines.some((l) => l.msg === msg) ? true : undefined);
    try {
      agent.start();
      await waitFor('the registration', has('registered with canary'));
      await relay.close();
      await waitFor('the lost connection', has('transport disconnected'));
      relay = await startRelay({ host: '127.0.0.1', port });
      await waitFor('the reconnect', has('transport reconnected'));
    } finally {
      await agent.close();
      await relay.close();
    }
    const transport = { component: 'transport', transportName: 'relay', transport: 'websocket' };
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'info', msg: 'transport connected', ...transport }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'info',
        msg: 'coalminer registered',
        component: 'canary',
        canary: 'c1',
        coalminer: 'eu',
      }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'info',
        msg: 'registered with canary',
        component: 'coalminer',
        coalminer: 'eu',
        region: 'eu-west-1',
        canary: 'c1',
      }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'warn', msg: 'transport disconnected', ...transport }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'transport reconnected',
        downMs: expect.any(Number),
        ...transport,
      }),
    );
  });
});
