// Alert rules against ground truth we control, through the agent and real Redis: a proxy that adds a
// known delay for a known time, and a sender that drops known pings. Each rule must fire and resolve at
// the evaluation M-of-N says, and the notifications must carry the numbers; a notifier that hangs or
// answers 500 must not delay evaluation or the other notifiers.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { AlertTransition } from '../../src/alerting/evaluator.js';
import {
  startHttpReceiver,
  startSmtpServer,
  type HttpReceiver,
} from '../../src/alerting/notifiers/receivers.testkit.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from '../../src/alerting/notifiers/webhook.js';
import { parseConfig } from '../../src/config/load.js';
import { Canary } from '../../src/messaging/canary.js';
import { create } from '../../src/transports/redis/index.js';
import type { Transport } from '../../src/transports/transport.js';
import { until } from '../support/async.js';
import { REDIS, redisReachable } from '../support/services.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { dropping } from '../support/lossy.js';

const redisUp = await redisReachable();
const SECRET = 'ground-truth-secret-0123456789';
const EVERY_MS = 1000;

/**
 * Evaluates `count` times, EVERY_MS apart (after a first evaluation that opens the first window),
 * calling `after(i)` right after evaluation i so changes line up with window boundaries. Returns the
 * transitions of each evaluation and how long each evaluate() took.
 */
async function evaluations(
  agent: Agent,
  count: number,
  after: (i: number) => void,
): Promise<{ at: Record<number, AlertTransition[]>; slowestMs: number }> {
  const at: Record<number, AlertTransition[]> = {};
  let slowestMs = 0;
  agent.alerts!.evaluate();
  let next = performance.now() + EVERY_MS;
  for (let i = 1; i <= count; i++) {
    await sleep(Math.max(0, next - performance.now()));
    next += EVERY_MS;
    const t0 = performance.now();
    const t = agent.alerts!.evaluate();
    slowestMs = Math.max(slowestMs, performance.now() - t0);
    if (t.length) at[i] = t;
    after(i);
  }
  return { at, slowestMs };
}

const summary = (at: Record<number, AlertTransition[]>) =>
  Object.fromEntries(Object.entries(at).map(([i, ts]) => [i, ts.map((t) => `${t.rule}:${t.to}`).join(',')]));

describe.skipIf(!redisUp)('alert rules against ground truth, through the agent and real Redis', () => {
  const opened: Transport[] = [];
  const receivers: HttpReceiver[] = [];
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await startTcpProxy(REDIS);
  });
  afterAll(async () => {
    await Promise.all(opened.map((t) => t.close()));
    await Promise.all(receivers.map((r) => r.close()));
    await proxy.close();
  });
  const open = async () => {
    const t = create('redis://127.0.0.1:6379', {});
    opened.push(t);
    await t.connect(AbortSignal.timeout(10_000));
    return t;
  };
  const receiver = async (answer?: Parameters<typeof startHttpReceiver>[0]) => {
    const r = await startHttpReceiver(answer);
    receivers.push(r);
    return r;
  };

  it('fires a p50 latency rule (2 of 3) two evaluations after a proxy adds 50 ms, and resolves two after it stops', async () => {
    const prefix = `gtA${process.pid}`;
    const hook = await receiver();
    const agent = new Agent(
      parseConfig(`
store: false
transports:
  - { name: slow, url: "redis://127.0.0.1:${proxy.port}" }
coalminers:
  - { name: miner-a, transport: slow, register: [canary-a], prefix: ${prefix} }
alerting:
  dashboardUrl: http://coalmine.test:9777/
  notifiers:
    - name: hook
      webhook: { url: "${hook.url}/alerts", secret: ${SECRET} }
  rules:
    - name: slow-path
      flow: { canary: canary-a, coalminer: miner-a }
      condition: { latency: { percentile: 50, above: 0.025 } }
      datapoints: { m: 2, n: 3 }
      evaluateEvery: 500ms
`),
      { alertTimer: false, processMetrics: false },
    );
    const canary = new Canary({ name: 'canary-a', prefix, transport: await open(), ratePerSecond: 100 });
    try {
      agent.start();
      await canary.start();
      await agent.messaging.ready();
      const miner = agent.messaging.coalminers[0]!.c;
      await until(() => miner.isConfirmedBy('canary-a'), 'registration', 10_000, 20);
      await sleep(300);

      // Windows 4 and 5 are delayed: 2 of the last 3 breach at evaluation 5. Windows 7 and 8 are not:
      // at 7 two of the last three (5, 6) still breach; at 8 only one does, so it resolves at 8.
      const { at } = await evaluations(agent, 9, (i) => {
        if (i === 3) proxy.delayMs.toClient = 50;
        if (i === 6) proxy.delayMs.toClient = 0;
      });
      expect(summary(at)).toEqual({ 5: 'slow-path:firing', 8: 'slow-path:resolved', 9: 'slow-path:ok' });
      expect(at[5]![0]!.value).toBeGreaterThan(0.049);
      expect(at[5]![0]!.value).toBeLessThan(0.06);
      expect(at[8]![0]!.value).toBeLessThan(0.025);

      await until(() => hook.requests.length >= 2, 'two notifications', 5000, 20);
      const bodies = hook.requests.map((r) => {
        const [timestamp, signature] = [r.headers[TIMESTAMP_HEADER], r.headers[SIGNATURE_HEADER]];
        expect(typeof timestamp === 'string' && typeof signature === 'string').toBe(true);
        expect(
          verifySignature(
            { body: r.body, timestamp: String(timestamp), signature: String(signature) },
            SECRET,
          ),
        ).toBe('ok');
        return JSON.parse(r.body) as Record<string, unknown>;
      });
      expect(bodies.map((b) => b.state)).toEqual(['firing', 'resolved']);
      expect(bodies[0]!.value).toBe(at[5]![0]!.value);
      expect(bodies[0]!.summary).toMatch(
        /^flow canary-a -> miner-a: p50 latency > 0\.025 s: 0\.05\d* s \(2 of the last 3 datapoints breached; fires at 2\)$/,
      );
      expect(bodies[0]!.dashboardUrl).toBe('http://coalmine.test:9777/#/flow/canary-a/miner-a');
      expect(bodies[0]!.labels).toEqual({ alertname: 'slow-path', canary: 'canary-a', coalminer: 'miner-a' });
    } finally {
      proxy.delayMs.toClient = 0;
      await canary.stop();
      await agent.close();
    }
  }, 40_000);

  it('fires a loss rule (2 of 2) on a sender dropping every 4th ping, with the loss it measured, and never waits for broken notifiers', async () => {
    const prefix = `gtB${process.pid}`;
    const good = await receiver();
    const stuck = await receiver(() => 'hang');
    const broken = await receiver(() => 500);
    const slack = await receiver();
    const smtp = await startSmtpServer();
    const agent = new Agent(
      parseConfig(`
store: false
coalminers:
  - { name: miner-b, transport: "redis://127.0.0.1:6379", register: [canary-b], prefix: ${prefix}, lossTimeout: 0.2 }
alerting:
  dashboardUrl: http://coalmine.test:9777/
  notifiers:
    - { name: good, webhook: { url: "${good.url}/hook", secret: ${SECRET} } }
    - { name: stuck, webhook: { url: "${stuck.url}/hook", secret: ${SECRET} }, timeout: 30s }
    - { name: broken, webhook: { url: "${broken.url}/hook", secret: ${SECRET} }, maxAttempts: 3 }
    - { name: chat, slack: { url: "${slack.url}/services/T/B/X" } }
    - name: mail
      email: { host: 127.0.0.1, port: ${smtp.port}, from: coalmine@test.local, to: [oncall@test.local] }
  rules:
    - name: lossy-path
      flow: { canary: canary-b, coalminer: miner-b }
      condition: { lossRatio: { above: 0.1 } }
      datapoints: { m: 2, n: 2 }
      evaluateEvery: 500ms
      annotations: { runbook: "https://runbooks.test/lossy-path" }
`),
      { alertTimer: false, processMetrics: false },
    );
    let dropOn = false;
    const dropped = new Set<number>();
    const canary = new Canary({
      name: 'canary-b',
      prefix,
      ratePerSecond: 100,
      transport: dropping(await open(), (seq) => {
        if (!dropOn || seq % 4 !== 0) return false;
        dropped.add(seq);
        return true;
      }),
    });
    try {
      agent.start();
      await canary.start();
      await agent.messaging.ready();
      const miner = agent.messaging.coalminers[0]!.c;
      await until(() => miner.isConfirmedBy('canary-b'), 'registration', 10_000, 20);
      await sleep(300);

      // Windows 4 and 5 lose a quarter of their pings: 2 of 2 breach at 5; window 6 holds only the
      // losses declared late from the end of window 5 (about 0.3 s x 25 pings/s), under 10 %.
      const { at, slowestMs } = await evaluations(agent, 7, (i) => {
        if (i === 3) dropOn = true;
        if (i === 5) dropOn = false;
      });
      expect(summary(at)).toEqual({ 5: 'lossy-path:firing', 6: 'lossy-path:resolved', 7: 'lossy-path:ok' });
      const firingValue = at[5]![0]!.value!;
      expect(firingValue).toBeGreaterThan(0.2);
      expect(firingValue).toBeLessThan(0.3);
      // A notifier that hangs (and one that fails) never held up an evaluation.
      expect(slowestMs).toBeLessThan(50);

      await canary.stop();
      await sleep(600);
      miner.tick();
      // The accounting behind the rule is exact: every dropped ping, and only those, counted lost.
      const counts = miner.flowCounts().find((f) => f.canary === 'canary-b')!.counts;
      expect(counts.lost + counts.late).toBe(dropped.size);
      expect(dropped.size).toBeGreaterThan(40);

      await until(() => good.requests.length >= 2, 'good receiver', 5000, 20);
      const [firing, resolved] = good.requests.map((r) => JSON.parse(r.body) as Record<string, unknown>);
      expect(firing).toMatchObject({ state: 'firing', value: firingValue, rule: 'lossy-path' });
      expect(firing!.summary).toBe(
        `flow canary-b -> miner-b: loss > 10 %: ${Number((firingValue * 100).toPrecision(4))} % (2 of the last 2 datapoints breached; fires at 2)`,
      );
      expect(firing!.annotations).toEqual({ runbook: 'https://runbooks.test/lossy-path' });
      expect(resolved).toMatchObject({ state: 'resolved' });

      await until(() => slack.requests.length >= 2, 'slack', 5000, 20);
      const text = (JSON.parse(slack.requests[0]!.body) as { text: string }).text;
      expect(text).toContain('[FIRING] lossy-path');
      expect(text).toContain('http://coalmine.test:9777/#/flow/canary-b/miner-b');

      await until(() => smtp.sessions.filter((s) => s.message).length >= 2, 'two emails', 5000, 20);
      const mail = smtp.sessions.find((s) => s.message.includes('FIRING'))!;
      expect(mail.commands).toContain('RCPT TO:<oncall@test.local>');
      expect(mail.message).toContain('Subject: [FIRING] lossy-path: flow canary-b -> miner-b: loss > 10 %');
      expect(mail.message).toContain('runbook: https://runbooks.test/lossy-path');

      await until(() => broken.requests.length >= 2, 'retries to the broken receiver', 10_000, 50);
      const stats = agent.alerts!.notifierStats();
      expect(stats.good!.delivered).toBe(2);
      expect(stats.broken!.delivered).toBe(0);
      expect(stats.broken!.failedAttempts).toBeGreaterThanOrEqual(2);
      expect(stats.stuck!.delivered).toBe(0);
      expect(stuck.requests.length).toBe(1);
      const metrics = await agent.registry.metrics();
      expect(metrics).toMatch(
        /coalmine_alert_notifications_total\{notifier="broken",kind="webhook",result="failed_attempt"\} [1-9]/,
      );
      expect(metrics).toContain('coalmine_alert_state{rule="lossy-path",state="ok"} 1');
    } finally {
      dropOn = false;
      await canary.stop();
      await agent.close();
      await smtp.close();
    }
  }, 40_000);
});
