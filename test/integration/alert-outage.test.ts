// Ground truth for alerting through a whole agent: a TCP target we close and reopen, probed every 3 s
// by the agent's scheduler, and a rule its own timer evaluates every second. One continuous outage must
// give exactly one firing notice and, once the target is back, one resolve notice (before the fix a
// window without a run counted as ok: firing, resolved, firing... once per run).
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { startHttpReceiver, type HttpReceiver } from '../../src/alerting/notifiers/receivers.testkit.js';
import { parseConfig } from '../../src/config/load.js';
import type { Observation } from '../../src/core/types.js';
import { until } from '../support/async.js';

/** A TCP listener on a fixed loopback port that can be closed (connections refused) and reopened. */
class Listener {
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  port = 0;

  async open(): Promise<void> {
    const server = createServer((s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
      s.on('error', () => s.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('alerting through the agent: one outage, one firing notice, one resolve', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('a TCP target probed every 3 s, its rule evaluated every 1 s, down for about 15 s', async () => {
    const listener = new Listener();
    await listener.open();
    cleanups.push(() => listener.close());
    const hook: HttpReceiver = await startHttpReceiver();
    cleanups.push(() => hook.close());
    const runs: Observation[] = [];
    const agent = new Agent(
      parseConfig(`
store: false
targets:
  - { name: db, kind: tcp, target: "127.0.0.1:${listener.port}", interval: 3s, timeout: 2s }
alerting:
  notifiers:
    - name: hook
      webhook: { url: "${hook.url}/alerts", secret: outage-secret-0123456789 }
  rules:
    - name: db-down
      target: db
      condition: { probeFailing: {} }
      evaluateEvery: 1s
`),
      { processMetrics: false, onObservation: (o) => runs.push(o) },
    );
    cleanups.push(() => agent.close());
    const rule = () => agent.alerts!.rules()[0]!;
    const failed = () => runs.filter((o) => !o.result.ok).length;
    const states = () => hook.requests.map((r) => (JSON.parse(r.body) as { state: string }).state);

    agent.start();
    await until(
      () => runs.some((o) => o.result.ok) && rule().lastValue === 0,
      'a first ok evaluation',
      10_000,
    );

    // The outage: five failed runs in a row (about 15 s), which five windows of 1 s without a run
    // between each two used to turn into five firing notices.
    await listener.close();
    await until(() => failed() >= 5 && states().length >= 1, 'five failed runs and a firing notice', 25_000);
    expect(rule().state).toBe('firing');
    await listener.open();

    await until(() => states().length >= 2, 'the resolve notice', 10_000);
    // One more good run, with windows without a run before and after it: nothing more is sent.
    const good = runs.length;
    await until(
      () => runs.length >= good + 1 && runs.slice(good).every((o) => o.result.ok),
      'another good run',
      10_000,
    );
    await until(
      () => rule().lastEvaluatedAt! > runs.at(-1)!.startedAtMs + 1500,
      'an evaluation after them',
      5000,
    );
    await agent.alerts!.idle();
    expect(states()).toEqual(['firing', 'resolved']);
    expect(failed()).toBeGreaterThanOrEqual(5);
  }, 60_000);
});
