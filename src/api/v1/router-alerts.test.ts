import { afterEach, describe, expect, it } from 'vitest';
import type { AlertHistoryEntry, AlertRuleStatus, Silence, WhoAmI } from './contract.js';
import { MemoryContext, type MemoryContextOptions } from '../../../test/support/memory-context.js';
import { closeServedApis, READ, serveApi, WRITE } from '../../../test/support/serve-api.js';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const MIN = 60_000;
const DAY = 86_400_000;

interface ErrorBody {
  error: { code: string; message: string };
}

afterEach(closeServedApis);

const alerting: NonNullable<MemoryContextOptions['alerts']> = {
  rules: [
    {
      rule: 'web-slow',
      subject: { target: 'web' },
      condition: 'p95 latency > 0.25 s',
      datapoints: { m: 2, n: 3 },
      forSeconds: 60,
      state: 'firing',
      activeSince: NOW - 10 * MIN,
      lastEvaluatedAt: NOW - 5_000,
      lastValue: 0.31,
      labels: { severity: 'page', team: 'edge' },
      annotations: { summary: 'web is slow' },
    },
    {
      rule: 'db-failing',
      subject: { target: 'db' },
      condition: 'probe failing',
      forSeconds: 120,
      state: 'pending',
      activeSince: NOW - 30_000,
      lastValue: 1,
      labels: { severity: 'ticket' },
    },
    {
      rule: 'eu-loss',
      subject: { canary: 'canary-us', coalminer: 'eu-west' },
      condition: 'loss > 1 %',
      state: 'ok',
      lastValue: 0,
      labels: { severity: 'page' },
    },
  ],
  history: [
    { rule: 'web-slow', from: 'ok', to: 'pending', at: NOW - 11 * MIN, value: 0.28 },
    { rule: 'web-slow', from: 'pending', to: 'firing', at: NOW - 10 * MIN, value: 0.31 },
    { rule: 'eu-loss', from: 'firing', to: 'resolved', at: NOW - 60 * MIN, value: 0 },
    { rule: 'db-failing', from: 'ok', to: 'pending', at: NOW - 30_000, value: null },
  ],
};

async function serve(withAlerts = true, maxBodyBytes?: number) {
  const ctx = new MemoryContext({
    version: '9.9.9',
    now: () => NOW,
    targets: [
      { name: 'web', kind: 'http', target: 'http://example.internal/', intervalSeconds: 60 },
      { name: 'db', kind: 'tcp', target: 'db.internal:5432', intervalSeconds: 5 },
    ],
    ...(withAlerts ? { alerts: alerting } : {}),
  });
  const { origin } = await serveApi(ctx, {
    now: () => NOW,
    rateLimit: false,
    ...(maxBodyBytes ? { maxBodyBytes } : {}),
  });
  return { url: `${origin}/api/v1`, ctx };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function get<T>(url: string, token = READ): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { headers: bearer(token) });
  return { status: res.status, body: (await res.json()) as T };
}

function postSilence(url: string, body: unknown, token = WRITE, type = 'application/json') {
  return fetch(`${url}/silences`, {
    method: 'POST',
    headers: { ...bearer(token), 'content-type': type },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function silencedBy(url: string): Promise<Record<string, string[]>> {
  const { body } = await get<{ alerts: AlertRuleStatus[] }>(`${url}/alerts`);
  return Object.fromEntries(body.alerts.map((a) => [a.rule, a.silencedBy]));
}

describe('alert rules and history', () => {
  it('GET alerts: every rule with its state, since when, last value and labels', async () => {
    const { url } = await serve();
    const { status, body } = await get<{ alerts: AlertRuleStatus[] }>(`${url}/alerts`);
    expect(status).toBe(200);
    expect(body.alerts.map((a) => [a.rule, a.state])).toEqual([
      ['web-slow', 'firing'],
      ['db-failing', 'pending'],
      ['eu-loss', 'ok'],
    ]);
    expect(body.alerts[0]).toEqual({
      rule: 'web-slow',
      subject: { target: 'web' },
      condition: 'p95 latency > 0.25 s',
      datapoints: { m: 2, n: 3 },
      forSeconds: 60,
      evaluateEverySeconds: 15,
      missingData: 'notBreaching',
      state: 'firing',
      activeSince: NOW - 10 * MIN,
      lastEvaluatedAt: NOW - 5_000,
      lastValue: 0.31,
      silencedBy: [],
      labels: { alertname: 'web-slow', target: 'web', severity: 'page', team: 'edge' },
      annotations: { summary: 'web is slow' },
    });
    expect(body.alerts[2]!.subject).toEqual({ canary: 'canary-us', coalminer: 'eu-west' });
  });

  it('GET alerts/history: newest first, narrowed to a rule, limited', async () => {
    const { url } = await serve();
    const all = await get<{ history: AlertHistoryEntry[] }>(`${url}/alerts/history`);
    expect(all.status).toBe(200);
    expect(all.body.history.map((h) => `${h.rule}:${h.to}`)).toEqual([
      'db-failing:pending',
      'web-slow:firing',
      'web-slow:pending',
      'eu-loss:resolved',
    ]);
    expect(all.body.history[0]).toEqual({
      rule: 'db-failing',
      from: 'ok',
      to: 'pending',
      at: NOW - 30_000,
      value: null,
    });
    const web = await get<{ history: AlertHistoryEntry[] }>(`${url}/alerts/history?rule=web-slow`);
    expect(web.body.history.map((h) => h.to)).toEqual(['firing', 'pending']);
    const one = await get<{ history: AlertHistoryEntry[] }>(`${url}/alerts/history?rule=web-slow&limit=1`);
    expect(one.body.history).toEqual([
      { rule: 'web-slow', from: 'pending', to: 'firing', at: NOW - 10 * MIN, value: 0.31 },
    ]);
  });

  it('answers a rule nobody configured with 404 naming the configured ones', async () => {
    const { url } = await serve();
    const { status, body } = await get<ErrorBody>(`${url}/alerts/history?rule=nope`);
    expect(status).toBe(404);
    expect(body.error).toEqual({
      code: 'not_found',
      message: 'no configured alert rule named "nope"; configured: "web-slow", "db-failing", "eu-loss"',
    });
  });

  it('refuses a bad limit or an unknown parameter with 400', async () => {
    const { url } = await serve();
    const cases: [string, string, RegExp][] = [
      ['limit=0', 'invalid_query', /"limit" must be a whole number from 1 to 1000, not "0"/],
      ['limit=1001', 'invalid_query', /not "1001"/],
      ['limit=ten', 'invalid_query', /not "ten"/],
      ['limit=2.5', 'invalid_query', /not "2.5"/],
      ['limit=-1', 'invalid_query', /not "-1"/],
      ['limit=', 'invalid_query', /not ""/],
      ['limit=5&limit=6', 'invalid_query', /"limit" is given 2 times/],
      ['rule=a&rule=b', 'invalid_query', /"rule" is given 2 times/],
      ['since=0', 'unknown_parameter', /unknown query parameter "since" \(allowed: rule, limit\)/],
    ];
    for (const [query, code, message] of cases) {
      const { status, body } = await get<ErrorBody>(`${url}/alerts/history?${query}`);
      expect(status, query).toBe(400);
      expect(body.error.code, query).toBe(code);
      expect(body.error.message, query).toMatch(message);
    }
  });

  it('sends each state change as an `alert` event on the stream', async () => {
    const { url, ctx } = await serve();
    const res = await fetch(`${url}/events?token=${READ}`);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const until = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${pattern}: ${text}`);
        text += decoder.decode(value, { stream: true });
      }
      return pattern.exec(text)!;
    };
    await until(/event: hello\n/);
    ctx.alerts!.transition('db-failing', 'firing', 1, NOW + 1_000);
    const m = await until(/event: alert\ndata: (.*)\n\n/);
    expect(JSON.parse(m[1]!)).toEqual({
      rule: 'db-failing',
      from: 'pending',
      to: 'firing',
      at: NOW + 1_000,
      value: 1,
    });
    await reader.cancel();
    // The rule shows the change, its pending period carried into firing.
    const { body } = await get<{ alerts: AlertRuleStatus[] }>(`${url}/alerts`);
    expect(body.alerts.find((a) => a.rule === 'db-failing')).toMatchObject({
      state: 'firing',
      activeSince: NOW - 30_000,
      lastEvaluatedAt: NOW + 1_000,
    });
  });
});

describe('silences', () => {
  it('POST with a duration: 201, endsAt from the duration, createdBy "api", and the rules it mutes', async () => {
    const { url } = await serve();
    const res = await postSilence(url, { matchers: { severity: 'page' }, durationSeconds: 7200 });
    expect(res.status).toBe(201);
    const s = (await res.json()) as Silence;
    expect(s).toEqual({
      id: expect.any(String),
      matchers: { severity: 'page' },
      startsAt: NOW,
      endsAt: NOW + 7_200_000,
      comment: '',
      createdBy: 'api',
      active: true,
    });
    // Notifications are muted, evaluation goes on: the rule still fires.
    expect(await silencedBy(url)).toEqual({ 'web-slow': [s.id], 'db-failing': [], 'eu-loss': [s.id] });
    const list = await get<{ silences: Silence[] }>(`${url}/silences`);
    expect(list.body.silences).toEqual([s]);
  });

  it('matches alertname, the target, the canary and coalminer, and rule labels; all matchers must hold', async () => {
    const { url } = await serve();
    const add = async (matchers: Record<string, string>) => {
      const res = await postSilence(url, {
        matchers,
        endsAt: NOW + 3_600_000,
        comment: 'c',
        createdBy: 'ops',
      });
      expect(res.status, JSON.stringify(matchers)).toBe(201);
      return ((await res.json()) as Silence).id;
    };
    const byName = await add({ alertname: 'db-failing' });
    const byTarget = await add({ target: 'web' });
    const byFlow = await add({ canary: 'canary-us', coalminer: 'eu-west' });
    await add({ canary: 'canary-us', coalminer: 'ap-south' }); // no such flow: mutes nothing
    await add({ severity: 'page', team: 'core' }); // team differs for web-slow: mutes nothing
    const byTwo = await add({ severity: 'page', team: 'edge' });
    expect(await silencedBy(url)).toEqual({
      'web-slow': [byTwo, byTarget],
      'db-failing': [byName],
      'eu-loss': [byFlow],
    });
  });

  it('POST with endsAt keeps it, with the comment and author given', async () => {
    const { url } = await serve();
    const res = await postSilence(url, {
      matchers: { alertname: 'web-slow' },
      endsAt: NOW + 90 * DAY,
      comment: 'CDN migration',
      createdBy: 'alice',
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({
      endsAt: NOW + 90 * DAY,
      comment: 'CDN migration',
      createdBy: 'alice',
      active: true,
    });
  });

  it('DELETE ends a silence: 204, listed as inactive, no longer muting; 404 for an unknown id', async () => {
    const { url } = await serve();
    const s = (await (
      await postSilence(url, { matchers: { target: 'web' }, durationSeconds: 60 })
    ).json()) as Silence;
    const del = await fetch(`${url}/silences/${encodeURIComponent(s.id)}`, {
      method: 'DELETE',
      headers: bearer(WRITE),
    });
    expect(del.status).toBe(204);
    expect(await del.text()).toBe('');
    const list = await get<{ silences: Silence[] }>(`${url}/silences`);
    expect(list.body.silences).toEqual([{ ...s, endsAt: NOW, active: false }]);
    expect((await silencedBy(url))['web-slow']).toEqual([]);

    const unknown = await fetch(`${url}/silences/no-such-silence`, {
      method: 'DELETE',
      headers: bearer(WRITE),
    });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as ErrorBody).error).toEqual({
      code: 'not_found',
      message: 'no silence with id "no-such-silence" (ended ones are kept for 24 h)',
    });
    const wrongMethod = await fetch(`${url}/silences/${s.id}`, { headers: bearer(WRITE) });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('DELETE');
  });

  it('lets a read token list but not create or end silences', async () => {
    const { url, ctx } = await serve();
    for (const path of ['alerts', 'alerts/history', 'silences']) {
      expect((await fetch(`${url}/${path}`, { headers: bearer(READ) })).status, path).toBe(200);
      expect((await fetch(`${url}/${path}`)).status, path).toBe(401);
    }
    const post = await postSilence(url, { matchers: { target: 'web' }, durationSeconds: 60 }, READ);
    expect(post.status).toBe(403);
    expect(((await post.json()) as ErrorBody).error).toEqual({
      code: 'forbidden',
      message: 'token "reader" lacks the write scope',
    });
    expect(ctx.alerts!.silences()).toEqual([]);

    const s = ctx.alerts!.addSilence({
      matchers: { target: 'web' },
      endsAt: NOW + MIN,
      comment: '',
      createdBy: 't',
    });
    const del = await fetch(`${url}/silences/${s.id}`, { method: 'DELETE', headers: bearer(READ) });
    expect(del.status).toBe(403);
    // Nor with the token in the query (GET only), nor with a cookie from another site.
    const viaQuery = await fetch(`${url}/silences/${s.id}?token=${WRITE}`, { method: 'DELETE' });
    expect(viaQuery.status).toBe(401);
    const cross = await fetch(`${url}/silences/${s.id}`, {
      method: 'DELETE',
      headers: { cookie: `coalmine_token=${WRITE}`, origin: 'http://evil.example' },
    });
    expect(cross.status).toBe(403);
    expect(((await cross.json()) as ErrorBody).error.code).toBe('cross_origin');
    expect(ctx.alerts!.silences()[0]!.active).toBe(true);
  });

  it('refuses every malformed silence with 400 naming the field, and creates none', async () => {
    const { url, ctx } = await serve();
    const ok = { matchers: { alertname: 'web-slow' }, durationSeconds: 60 };
    const cases: [string, unknown, RegExp][] = [
      ['bad JSON', '{"matchers": {', /^the body is not JSON/],
      ['no body', '', /^the body must be a JSON object/],
      ['an array', [ok], /^the body must be a JSON object/],
      ['no matchers', { durationSeconds: 60 }, /^"matchers" must be an object of label name to value/],
      ['matchers as a list', { ...ok, matchers: [['alertname', 'x']] }, /^"matchers" must be an object/],
      ['no matcher', { ...ok, matchers: {} }, /^"matchers" needs at least one matcher/],
      [
        'a label name with a digit first',
        { ...ok, matchers: { '1x': 'a' } },
        /^"matchers\.1x" is not a label name/,
      ],
      [
        'a label name with a dash',
        { ...ok, matchers: { 'a-b': 'a' } },
        /^"matchers\.a-b" is not a label name/,
      ],
      ['an empty label name', { ...ok, matchers: { '': 'a' } }, /^"matchers\." is not a label name/],
      ['a reserved label name', { ...ok, matchers: { __name__: 'a' } }, /^"matchers\.__name__" is reserved/],
      [
        '__proto__',
        '{"matchers": {"__proto__": "a"}, "durationSeconds": 60}',
        /^"matchers\.__proto__" is reserved/,
      ],
      [
        'a number value',
        { ...ok, matchers: { alertname: 5 } },
        /^"matchers\.alertname" must be a string, not 5/,
      ],
      ['a null value', { ...ok, matchers: { alertname: null } }, /^"matchers\.alertname" must be a string/],
      [
        'a huge value',
        { ...ok, matchers: { alertname: 'x'.repeat(1025) } },
        /^"matchers\.alertname" is 1025/,
      ],
      [
        'too many matchers',
        { ...ok, matchers: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`l${i}`, 'v'])) },
        /^"matchers" has 33; at most 32/,
      ],
      ['both ends', { ...ok, endsAt: NOW + MIN }, /^"endsAt" and "durationSeconds" are both given/],
      ['neither end', { matchers: ok.matchers }, /^"durationSeconds" or "endsAt" is required/],
      [
        'endsAt in the past',
        { matchers: ok.matchers, endsAt: NOW - 1 },
        /^"endsAt" \(\d+\) is not in the future/,
      ],
      ['endsAt now', { matchers: ok.matchers, endsAt: NOW }, /^"endsAt" .* is not in the future/],
      [
        'endsAt as a date',
        { matchers: ok.matchers, endsAt: '2030-01-01' },
        /^"endsAt" must be Unix milliseconds/,
      ],
      [
        'endsAt fractional',
        { matchers: ok.matchers, endsAt: NOW + 0.5 },
        /^"endsAt" must be Unix milliseconds/,
      ],
      [
        'endsAt too far',
        { matchers: ok.matchers, endsAt: NOW + 90 * DAY + 1 },
        /^"endsAt" is more than 90 days/,
      ],
      ['zero duration', { ...ok, durationSeconds: 0 }, /^"durationSeconds" must be more than 0/],
      ['negative duration', { ...ok, durationSeconds: -60 }, /^"durationSeconds" must be more than 0/],
      [
        'huge duration',
        { ...ok, durationSeconds: 90 * 86_400 + 1 },
        /^"durationSeconds" is 7776001; at most 7776000/,
      ],
      [
        'duration as text',
        { ...ok, durationSeconds: '1h' },
        /^"durationSeconds" must be a number of seconds/,
      ],
      ['comment not text', { ...ok, comment: 5 }, /^"comment" must be a string/],
      [
        'comment too long',
        { ...ok, comment: 'x'.repeat(1001) },
        /^"comment" is 1001 characters; at most 1000/,
      ],
      ['createdBy empty', { ...ok, createdBy: ' ' }, /^"createdBy" must be a non-empty string/],
      [
        'createdBy too long',
        { ...ok, createdBy: 'x'.repeat(101) },
        /^"createdBy" is 101 characters; at most 100/,
      ],
      [
        'an unknown field',
        { ...ok, startsAt: NOW },
        /^"startsAt" is not a field of a silence \(allowed: matchers,/,
      ],
    ];
    for (const [what, body, message] of cases) {
      const res = await postSilence(url, body);
      expect(res.status, what).toBe(400);
      const { error } = (await res.json()) as ErrorBody;
      expect(error.code, what).toBe('invalid_body');
      expect(error.message, what).toMatch(message);
    }
    const wrongType = await postSilence(url, ok, WRITE, 'text/plain');
    expect(wrongType.status).toBe(415);
    expect(ctx.alerts!.silences()).toEqual([]);
  });

  it('refuses a body over the size limit with 413', async () => {
    const { url, ctx } = await serve(true, 1024);
    const res = await postSilence(url, {
      matchers: { alertname: 'web-slow' },
      durationSeconds: 60,
      comment: 'x'.repeat(2000),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as ErrorBody).error.code).toBe('payload_too_large');
    expect(ctx.alerts!.silences()).toEqual([]);
  });
});

describe('without alerting', () => {
  it('answers every alert and silence route with 404 saying how to configure it', async () => {
    const { url } = await serve(false);
    const calls: [string, string][] = [
      ['GET', 'alerts'],
      ['GET', 'alerts/history'],
      ['GET', 'silences'],
      ['POST', 'silences'],
      ['DELETE', 'silences/silence-1'],
    ];
    for (const [method, path] of calls) {
      const res = await fetch(`${url}/${path}`, {
        method,
        headers: { ...bearer(WRITE), 'content-type': 'application/json' },
        ...(method === 'POST' ? { body: JSON.stringify({ matchers: { a: 'b' }, durationSeconds: 60 }) } : {}),
      });
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as ErrorBody).error, path).toEqual({
        code: 'alerting_not_configured',
        message:
          'alerting is not configured on this agent: add an `alerting:` section with rules to its config',
      });
    }
  });
});

describe('whoami', () => {
  it("tells the token's name and scopes", async () => {
    const { url } = await serve(false);
    expect((await get<WhoAmI>(`${url}/whoami`, READ)).body).toEqual({ name: 'reader', scopes: ['read'] });
    expect((await get<WhoAmI>(`${url}/whoami`, WRITE)).body).toEqual({
      name: 'writer',
      scopes: ['read', 'write'],
    });
    expect((await fetch(`${url}/whoami`)).status).toBe(401);
  });
});
