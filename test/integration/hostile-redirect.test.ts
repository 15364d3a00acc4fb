import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { logProbeTransitions } from '../../src/agent/probe-transitions.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/core/log.js';
import type { Observation } from '../../src/core/types.js';

/**
 * Issue 9: a target answering 302 with `Location: ftp://` and 15,000 letters stalled the event loop
 * (0.35 s to redact each log line naming it) and made healthy targets look down. Here such a target
 * flaps between that redirect and 200, so every run that fails is logged, while a healthy target is
 * probed beside it.
 */
describe('an agent probing a target that redirects to a 15,000-letter ftp:// URL', () => {
  const location = `ftp://${'a'.repeat(15_000)}`;
  let hostile = false;
  let flip = false;
  const servers: Server[] = [];
  const lines: string[] = [];
  const observed: Observation[] = [];
  let waiters: (() => void)[] = [];
  let agent: Agent;

  const serve = async (handler: Parameters<typeof createServer>[1]): Promise<number> => {
    const server = createServer(handler);
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as AddressInfo).port;
  };

  /** Resolves once `test` holds for what was observed and logged, or fails after 10 s. */
  const until = (test: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error('timed out waiting')), 10_000);
      const check = () => {
        if (!test()) return;
        clearTimeout(deadline);
        waiters = waiters.filter((w) => w !== check);
        resolve();
      };
      waiters.push(check);
      check();
    });

  /** The event loop delay's 99th percentile in ms while `during` runs. */
  const loopDelayP99 = async (during: () => Promise<void>) => {
    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
    await during();
    h.disable();
    return h.percentile(99) / 1e6;
  };

  const downLines = (target: string) =>
    lines.filter((l) => l.includes('"msg":"target down"') && l.includes(`"target":"${target}"`));

  beforeAll(async () => {
    const healthyPort = await serve((_req, res) => res.end('ok'));
    const flappingPort = await serve((_req, res) => {
      flip = !flip;
      if (hostile && flip) res.writeHead(302, { location }).end();
      else res.end('ok');
    });
    const config = parseConfig(
      [
        'interval: 200ms',
        'timeout: 150ms',
        'targets:',
        `  - { name: healthy, kind: http, target: "http://127.0.0.1:${healthyPort}/" }`,
        `  - { name: flapping, kind: http, target: "http://127.0.0.1:${flappingPort}/" }`,
      ].join('\n'),
    );
    const log = createLogger({ format: 'json', stream: { write: (l: string) => lines.push(l) } });
    const transitions = logProbeTransitions(log);
    agent = new Agent(config, {
      log,
      processMetrics: false,
      onObservation: (o) => {
        transitions(o);
        observed.push(o);
        for (const w of [...waiters]) w();
      },
    });
    agent.start();
  });

  afterAll(async () => {
    await agent.close();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  it('keeps the event loop free, logs bounded lines, and never calls the healthy target down', async () => {
    const runs = (name: string) => observed.filter((o) => o.name === name).length;
    const baseline = await loopDelayP99(async () => {
      const from = runs('healthy');
      await until(() => runs('healthy') >= from + 6);
    });
    hostile = true;
    const withHostile = await loopDelayP99(() => until(() => downLines('flapping').length >= 4));

    // Before the fix each of those lines took 0.35 s to write: p99 was above 300 ms.
    expect(withHostile).toBeLessThan(baseline + 50);
    for (const line of downLines('flapping')) {
      expect(line.length).toBeLessThan(6000);
      expect(line).toContain('redirect to unsupported scheme');
      expect(line).toMatch(/…\(\d+ more characters\)/);
    }
    expect(downLines('healthy')).toEqual([]);
    expect(observed.filter((o) => o.name === 'healthy').every((o) => o.result.ok)).toBe(true);
  });
});
