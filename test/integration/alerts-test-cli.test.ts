// `coalmine alerts test`: a test alert and its resolve notice through each notifier of a config, against
// receivers the test starts (a webhook checking signatures, a Slack endpoint answering 500, an SMTP server)
// and a real Alertmanager.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startHttpReceiver,
  startSmtpServer,
  type HttpReceiver,
} from '../../src/alerting/notifiers/receivers.testkit.js';
import { verifySignature } from '../../src/alerting/notifiers/webhook.js';
import { main, type Io } from '../../src/cli/main.js';
import { haveAlertmanager, startAlertmanager, type RunningAlertmanager } from '../support/alertmanager.js';

const SECRET = 'alerts-test-secret-0123456789';

async function cli(env: Record<string, string>, ...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l), isTty: false };
  const code = await main(['node', 'coalmine', ...args], io, env);
  return { code, out, err: err.join('\n') };
}

describe.skipIf(!haveAlertmanager())('coalmine alerts test', () => {
  let dir = '';
  let hook: HttpReceiver;
  let slack: HttpReceiver;
  let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
  let am: RunningAlertmanager;
  let config = '';
  const env = { HOOK_SECRET: SECRET };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coalmine-alerts-test-'));
    hook = await startHttpReceiver((r) => {
      const h = (name: string) =>
        typeof r.headers[name] === 'string' ? (r.headers[name] as string) : undefined;
      const check = verifySignature(
        { body: r.body, timestamp: h('x-coalmine-timestamp'), signature: h('x-coalmine-signature') },
        SECRET,
      );
      return check === 'ok' ? 204 : 401;
    });
    slack = await startHttpReceiver(() => 500);
    smtp = await startSmtpServer();
    am = await startAlertmanager();
    config = join(dir, 'agent.yaml');
    await writeFile(
      config,
      `targets: []
alerting:
  dashboardUrl: http://coalmine.test:9777/
  notifiers:
    - { name: hook, webhook: { url: "${hook.url}/hook", secretEnv: HOOK_SECRET } }
    - { name: chat, slack: { url: "${slack.url}/slack" }, maxAttempts: 1 }
    - { name: mail, email: { host: 127.0.0.1, port: ${smtp.port}, from: coalmine@test.local, to: [oncall@test.local] } }
    - { name: am, alertmanager: { url: "${am.url}" } }
  rules: []
`,
    );
  }, 30_000);

  afterAll(async () => {
    await Promise.all([hook?.close(), slack?.close(), smtp?.close(), am?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('sends a firing test alert and its resolve notice through each, and says which failed (exit 1)', async () => {
    const r = await cli(env, 'alerts', 'test', '--config', config, '--timeout', '5s');
    expect(r.code, r.out.join('\n') + r.err).toBe(1);
    expect(r.out[0]).toMatch(/^ok {4}hook \(webhook\): firing and resolved delivered in \d+ ms$/);
    expect(r.out[1]).toMatch(/^FAIL {2}chat \(slack\): firing: .*500/);
    expect(r.out[2]).toMatch(/^ok {4}mail \(email\): firing and resolved/);
    expect(r.out[3]).toMatch(/^ok {4}am \(alertmanager\): firing and resolved/);
    expect(r.out[4]).toBe('1 of 4 notifiers failed');

    // The webhook got both, signed, marked as a test, with the dashboard link.
    const bodies = hook.requests.map((q) => JSON.parse(q.body) as Record<string, unknown>);
    expect(bodies.map((b) => b.state)).toEqual(['firing', 'resolved']);
    expect(bodies[0]).toMatchObject({
      rule: 'coalmine-test',
      labels: { alertname: 'coalmine-test', coalmine_test: 'true' },
      dashboardUrl: 'http://coalmine.test:9777/',
    });
    expect(String(bodies[0]!.summary)).toMatch(/if you can read this, this notifier works/);
    expect(slack.requests).toHaveLength(1); // one attempt, no retry queue in a test run
    expect(smtp.sessions.filter((s) => s.message)).toHaveLength(2);
    expect(smtp.sessions[0]!.message).toContain('coalmine test alert');

    // Alertmanager got the resolve notice too: nothing stays open there.
    const open = (await am.alerts()).filter(
      (a) => a.labels.alertname === 'coalmine-test' && a.status.state === 'active',
    );
    expect(open).toEqual([]);
  }, 30_000);

  it('leaves the test alert firing in Alertmanager with --no-resolve, until a full test resolves it', async () => {
    const firing = await cli(env, 'alerts', 'test', '--config', config, '--notifier', 'am', '--no-resolve');
    expect(firing.code).toBe(0);
    const held = (await am.alerts()).filter((a) => a.labels.alertname === 'coalmine-test');
    expect(held).toEqual([
      expect.objectContaining({
        labels: expect.objectContaining({ coalmine_test: 'true', severity: 'none' }) as unknown,
        status: expect.objectContaining({ state: 'active' }) as unknown,
      }),
    ]);
    expect(Date.parse(held[0]!.endsAt)).toBeGreaterThan(Date.now());
    expect((await cli(env, 'alerts', 'test', '--config', config, '--notifier', 'am')).code).toBe(0);
    const after = (await am.alerts()).filter(
      (a) => a.labels.alertname === 'coalmine-test' && a.status.state === 'active',
    );
    expect(after).toEqual([]);
  });

  it('sends only to the notifiers named, firing only with --no-resolve', async () => {
    const before = hook.requests.length;
    const r = await cli(env, 'alerts', 'test', '--config', config, '--notifier', 'hook', '--no-resolve');
    expect(r.code).toBe(0);
    expect(r.out).toEqual([
      expect.stringMatching(/^ok {4}hook \(webhook\): firing delivered/),
      '1 notifier delivered the test alert',
    ]);
    expect(hook.requests.length - before).toBe(1);
  });

  it('explains a bad notifier name, a missing secret, a config without notifiers and a bad timeout (exit 2)', async () => {
    const unknown = await cli(env, 'alerts', 'test', '--config', config, '--notifier', 'pager');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain(
      '--notifier: no notifier named "pager" (the config has hook, chat, mail, am)',
    );
    const noSecret = await cli({}, 'alerts', 'test', '--config', config);
    expect(noSecret.code).toBe(2);
    expect(noSecret.err).toMatch(/secretEnv: environment variable HOOK_SECRET is not set/);
    const empty = join(dir, 'empty.yaml');
    await writeFile(empty, 'targets: []\n');
    const none = await cli(env, 'alerts', 'test', '--config', empty);
    expect(none.code).toBe(2);
    expect(none.err).toContain('no notifiers in its alerting: section');
    const slow = await cli(env, 'alerts', 'test', '--config', config, '--timeout', 'soon');
    expect(slow.code).toBe(2);
    expect(slow.err).toContain('--timeout: expected a duration');
  });
});
