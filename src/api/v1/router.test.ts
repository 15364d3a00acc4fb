import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { FlowSummary, Matrix, Series, TargetSummary } from './contract.js';
import { apiFixture as fixture, NOW } from '../../../test/support/api-fixture.js';
import type { MemoryContext, MemoryStore } from '../../../test/support/memory-context.js';
import { openApiDocument } from './openapi.js';
import type { ApiV1, ApiV1Options } from './api.js';
import { apiV1Routes } from './routes/index.js';
import { closeServedApis, READ, serveApi, WRITE } from '../../../test/support/serve-api.js';

const MIN = 60_000;

interface Harness {
  url: string;
  ctx: MemoryContext;
  store: MemoryStore;
  api: ApiV1;
  fallthrough: string[];
}

afterEach(closeServedApis);

async function serve(opts: ApiV1Options = {}, withStore = true): Promise<Harness> {
  const { ctx, store } = fixture(withStore);
  const fallthrough: string[] = [];
  const { origin, api } = await serveApi(ctx, { now: () => NOW, rateLimit: false, ...opts }, (req, res) => {
    fallthrough.push(req.url ?? '');
    res.writeHead(404).end('not the api');
  });
  return { url: origin, ctx, store, api, fallthrough };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function getJson<T>(url: string, token = READ): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(url, { headers: bearer(token) });
  return { status: res.status, body: (await res.json()) as T, headers: res.headers };
}

interface ErrorBody {
  error: { code: string; message: string };
}

describe('authentication and scopes', () => {
  it('answers 401 with WWW-Authenticate without a token or with a wrong one', async () => {
    const h = await serve();
    const none = await fetch(`${h.url}/api/v1/targets`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="coalmine"');
    expect(((await none.json()) as ErrorBody).error.code).toBe('unauthorized');
    const wrong = await fetch(`${h.url}/api/v1/targets`, { headers: bearer('x'.repeat(40)) });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('error="invalid_token"');
    const basic = await fetch(`${h.url}/api/v1/targets`, { headers: { authorization: `Basic ${READ}` } });
    expect(basic.status).toBe(401);
  });

  it('refuses a read-only token on POST check with 403 and never runs the check', async () => {
    const h = await serve();
    const res = await fetch(`${h.url}/api/v1/check`, { method: 'POST', headers: bearer(READ) });
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toContain('scope="write"');
    expect(((await res.json()) as ErrorBody).error).toEqual({
      code: 'forbidden',
      message: 'token "reader" lacks the write scope',
    });
    expect(h.ctx.checkCalls).toEqual([]);
  });

  it('accepts ?token= on GET, then sets a strict HttpOnly cookie that works alone', async () => {
    const h = await serve();
    const first = await fetch(`${h.url}/api/v1/status?token=${READ}`);
    expect(first.status).toBe(200);
    const cookie = first.headers.get('set-cookie')!;
    expect(cookie).toMatch(
      /^coalmine_token=read-token-0123456789abcdef; Path=\/; HttpOnly; SameSite=Strict$/,
    );
    const again = await fetch(`${h.url}/api/v1/status`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(again.status).toBe(200);
    expect(again.headers.get('set-cookie')).toBeNull();
  });

  it('does not take a query token on POST, nor a cookie from another origin', async () => {
    const h = await serve();
    const viaQuery = await fetch(`${h.url}/api/v1/check?token=${WRITE}`, { method: 'POST' });
    expect(viaQuery.status).toBe(401);
    const cookie = `coalmine_token=${WRITE}`;
    const cross = await fetch(`${h.url}/api/v1/check`, {
      method: 'POST',
      headers: { cookie, origin: 'http://evil.example' },
    });
    expect(cross.status).toBe(403);
    expect(((await cross.json()) as ErrorBody).error.code).toBe('cross_origin');
    expect(h.ctx.checkCalls).toEqual([]);
    const same = await fetch(`${h.url}/api/v1/check?target=web`, {
      method: 'POST',
      headers: { cookie, origin: h.url },
    });
    expect(same.status).toBe(200);
    expect(h.ctx.checkCalls).toEqual([['web']]);
  });

  it('serves openapi.json without a token', async () => {
    const h = await serve();
    const res = await fetch(`${h.url}/api/v1/openapi.json`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { openapi: string; info: { version: string } }).info.version).toBe('9.9.9');
  });
});

describe('routes', () => {
  it('GET targets: config, status, last run, last-hour window and sparkline from the store', async () => {
    const h = await serve();
    await h.ctx.check(['db']);
    const { status, body } = await getJson<{ targets: TargetSummary[] }>(`${h.url}/api/v1/targets`);
    expect(status).toBe(200);
    const [web, db] = body.targets;
    expect(web).toMatchObject({ name: 'web', kind: 'http', intervalSeconds: 60, status: 'unknown' });
    expect(web!.last).toBeUndefined();
    expect(web!.window.runs).toBe(60);
    expect(web!.window.successRatio).toBeCloseTo(54 / 60);
    // Successful durations are 2..60 ms without 11, 21, ...: the 27th of 54 values is 30 ms.
    expect(web!.window.p50).toBeCloseTo(0.03, 4);
    expect(web!.sparkline).toHaveLength(60);
    expect(web!.sparkline.reduce((n, p) => n + p[2], 0)).toBe(6);
    expect(web!.sparkline[0]![0]).toBe(Date.UTC(2025, 0, 1, 11, 1, 0));
    expect(db).toMatchObject({
      name: 'db',
      status: 'down',
      last: {
        time: NOW,
        ok: false,
        durationSeconds: 2,
        error: { code: 'timeout', message: 'no answer in 2 s' },
      },
      window: { runs: 1, successRatio: 0, p50: null },
    });
  });

  it('GET flows: live counts with the store window, or the live window where the store has none', async () => {
    const h = await serve();
    const { body } = await getJson<{ flows: FlowSummary[] }>(`${h.url}/api/v1/flows`);
    expect(body.flows).toHaveLength(3);
    const usEu = body.flows.find((f) => f.canary === 'canary-us' && f.coalminer === 'eu-west')!;
    expect(usEu.counts.received).toBe(99);
    expect(usEu.window.received).toBe(4);
    expect(usEu.window.lossRatio).toBeCloseTo(0.2);
    expect(usEu.window.p50).toBeCloseTo(0.02, 4);
    expect(usEu.sparkline.filter((p) => p[1] !== null)).toEqual([
      [NOW - 30_000 - 10 * MIN, expect.any(Number), 1],
    ]);
    const usAp = body.flows.find((f) => f.coalminer === 'ap-south')!;
    expect(usAp.window).toEqual({ p50: 0.2, p95: 0.3, p99: 0.4, lossRatio: 0.5, received: 10 });
  });

  it('GET targets/{name}/series: percentiles, failures and phases per step', async () => {
    const h = await serve();
    const from = NOW - 30_000 - 59 * MIN;
    const { status, body } = await getJson<Series>(
      `${h.url}/api/v1/targets/web/series?from=${from}&to=${from + 60 * MIN}&step=10m`,
    );
    expect(status).toBe(200);
    expect(body).toMatchObject({ from, to: from + 60 * MIN, step: 600_000, resolution: 'raw' });
    expect(body.points).toHaveLength(6);
    expect(body.points.map((p) => p.count)).toEqual([10, 10, 10, 10, 10, 10]);
    expect(body.points.map((p) => p.failures)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(body.points[0]!.max).toBeCloseTo(0.01, 4);
    expect(body.points[0]!.p1).toBeCloseTo(0.002, 4);
    expect(body.points[0]!.phases!.connect).toBeCloseTo(0.0005);
    const byDefault = await getJson<Series>(`${h.url}/api/v1/targets/web/series`);
    expect(byDefault.body.step).toBe(15_000);
    expect(byDefault.body.points).toHaveLength(240);
  });

  it('GET flows/{canary}/{coalminer}/series: loss, duplicates and reordering per step', async () => {
    const h = await serve();
    const { status, body } = await getJson<Series>(
      `${h.url}/api/v1/flows/canary-us/eu-west/series?from=${NOW - 60 * MIN}&to=${NOW}&step=30m`,
    );
    expect(status).toBe(200);
    expect(body.points[1]).toMatchObject({ count: 4, failures: 1, duplicated: 1, reordered: 2, late: 0 });
    expect(body.points[1]!.p99).toBeCloseTo(0.04, 4);
    expect(body.points[0]).toMatchObject({ count: 0, p50: null });
  });

  it('GET matrix: canaries by coalminers with null where there is no flow', async () => {
    const h = await serve();
    const { body } = await getJson<Matrix>(`${h.url}/api/v1/matrix`);
    expect(body.canaries).toEqual(['canary-eu', 'canary-us']);
    expect(body.coalminers).toEqual([
      { name: 'ap-south', region: 'ap-south-1' },
      { name: 'eu-west', region: 'eu-west-1' },
    ]);
    expect(body.cells[0]![0]).toBeNull();
    expect(body.cells[0]![1]).toMatchObject({ status: 'unknown', p95: null });
    expect(body.cells[1]![0]).toEqual({ p95: 0.3, lossRatio: 0.5, status: 'down' });
    expect(body.cells[1]![1]!.lossRatio).toBeCloseTo(0.2);
  });

  it('POST check: every target, or the named ones by query or JSON body', async () => {
    const h = await serve();
    const all = await fetch(`${h.url}/api/v1/check`, { method: 'POST', headers: bearer(WRITE) });
    expect(all.status).toBe(200);
    const { results } = (await all.json()) as { results: { name: string; ok: boolean }[] };
    expect(results.map((r) => [r.name, r.ok])).toEqual([
      ['web', true],
      ['db', false],
    ]);
    const byBody = await fetch(`${h.url}/api/v1/check?target=web`, {
      method: 'POST',
      headers: { ...bearer(WRITE), 'content-type': 'application/json' },
      body: JSON.stringify({ targets: ['db', 'web'] }),
    });
    expect(byBody.status).toBe(200);
    expect(h.ctx.checkCalls).toEqual([undefined, ['web', 'db']]);
  });

  it('GET status: the agent status with the API counters', async () => {
    const h = await serve();
    const { body } = await getJson<Record<string, unknown>>(`${h.url}/api/v1/status`);
    expect(body).toMatchObject({
      version: '9.9.9',
      targets: 2,
      flows: 3,
      store: { written: 60 },
      api: { eventClients: 0, eventClientsDropped: 0, eventClientsRefused: 0, rateLimited: 0 },
    });
  });

  it('GET export: every raw result in the range as CSV or JSON lines', async () => {
    const h = await serve();
    const range = `from=${NOW - 30 * MIN}&to=${NOW}`;
    const csv = await fetch(`${h.url}/api/v1/export?target=web&${range}&format=csv`, {
      headers: bearer(READ),
    });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(csv.headers.get('content-disposition')).toMatch(
      /^attachment; filename="coalmine-web-\d+-\d+\.csv"$/,
    );
    const lines = (await csv.text()).trimEnd().split('\r\n');
    expect(lines[0]).toMatch(
      /^time,time_ms,name,kind,target,ok,duration_seconds,error_code,error_message,resolve_seconds,connect_seconds,.*,other_phases,values$/,
    );
    expect(lines).toHaveLength(31);
    expect(lines[1]).toMatch(
      /^2025-01-01T11:30:30\.000Z,\d+,web,http,http:\/\/example\.internal\/,true,0\.03,,,,0\.0005,/,
    );
    expect(lines[2]).toMatch(
      /^2025-01-01T11:31:30\.000Z,\d+,web,http,http:\/\/example\.internal\/,false,0\.031,/,
    );
    expect(lines[2]).toContain(',http_status,"status 503, ""quoted"", with comma",');
    const jsonl = await fetch(`${h.url}/api/v1/export?target=web&${range}`, { headers: bearer(READ) });
    expect(jsonl.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    const rows = (await jsonl.text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { time: number; ok: boolean });
    expect(rows).toHaveLength(30);
    expect(rows.every((r, i) => i === 0 || r.time > rows[i - 1]!.time)).toBe(true);
    expect(h.store.exportsClosed).toBe(2);
  });

  it('answers series and export with 503 when the agent has no store', async () => {
    const h = await serve({}, false);
    const res = await getJson<ErrorBody>(`${h.url}/api/v1/targets/web/series`);
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('no_store');
    const targets = await getJson<{ targets: TargetSummary[] }>(`${h.url}/api/v1/targets`);
    expect(targets.body.targets[0]!.window).toEqual({ p50: null, p95: null, successRatio: null, runs: 0 });
  });

  it('leaves paths outside /api/v1 to the server', async () => {
    const h = await serve();
    const res = await fetch(`${h.url}/metrics`);
    expect(await res.text()).toBe('not the api');
    await fetch(`${h.url}/api/v10/targets`);
    expect(h.fallthrough).toEqual(['/metrics', '/api/v10/targets']);
  });
});

describe('bad input', () => {
  it('answers bad queries with 400 and a JSON reason', async () => {
    const h = await serve();
    const cases: [string, string, RegExp][] = [
      ['targets/web/series?from=soon', 'invalid_query', /"from" must be Unix milliseconds/],
      [`targets/web/series?from=${NOW}&to=${NOW - MIN}`, 'invalid_query', /must be before "to"/],
      [
        `targets/web/series?from=${NOW - 7 * 86_400_000}&to=${NOW}&step=60s`,
        'invalid_query',
        /points; at most 2000/,
      ],
      ['targets/web/series?step=1ms', 'invalid_query', /at least 1000 ms/],
      ['targets/web/series?url=http://127.0.0.1/', 'unknown_parameter', /unknown query parameter "url"/],
      ['export?from=0', 'invalid_query', /"target" is required/],
      ['export?target=web&format=xml', 'invalid_query', /csv or jsonl/],
      ['targets/%E0%A4%A/series', 'invalid_query', /percent-encoding/],
    ];
    for (const [path, code, message] of cases) {
      const { status, body } = await getJson<ErrorBody>(`${h.url}/api/v1/${path}`);
      expect(status, path).toBe(400);
      expect(body.error.code, path).toBe(code);
      expect(body.error.message, path).toMatch(message);
    }
  });

  it('answers unknown names with 404 listing what is configured', async () => {
    const h = await serve();
    const t = await getJson<ErrorBody>(`${h.url}/api/v1/targets/nope/series`);
    expect(t.status).toBe(404);
    expect(t.body.error.message).toBe('no configured target named "nope"; configured: "web", "db"');
    const f = await getJson<ErrorBody>(`${h.url}/api/v1/flows/canary-eu/ap-south/series`);
    expect(f.status).toBe(404);
    expect(f.body.error.message).toMatch(/no configured flow named "canary-eu\/ap-south"/);
    const e = await getJson<ErrorBody>(`${h.url}/api/v1/export?target=nope`);
    expect(e.status).toBe(404);
    const p = await getJson<ErrorBody>(`${h.url}/api/v1/nothing`);
    expect(p.status).toBe(404);
    expect(p.body.error.message).toMatch(/openapi\.json/);
  });

  it('answers a wrong method with 405 and Allow', async () => {
    const h = await serve();
    const post = await fetch(`${h.url}/api/v1/targets`, { method: 'POST', headers: bearer(WRITE) });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
    const get = await fetch(`${h.url}/api/v1/check`, { headers: bearer(WRITE) });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect(((await get.json()) as ErrorBody).error.code).toBe('method_not_allowed');
  });

  it('refuses a body over the limit with 413, declared or streamed', async () => {
    const h = await serve({ maxBodyBytes: 1024 });
    const big = JSON.stringify({ targets: Array.from({ length: 300 }, () => 'web') });
    const declared = await fetch(`${h.url}/api/v1/check`, {
      method: 'POST',
      headers: { ...bearer(WRITE), 'content-type': 'application/json' },
      body: big,
    });
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as ErrorBody).error.code).toBe('payload_too_large');
    // Chunked: no Content-Length, so the limit applies while reading.
    const streamed = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        `${h.url}/api/v1/check`,
        { method: 'POST', headers: { ...bearer(WRITE), 'content-type': 'application/json' } },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        },
      );
      req.on('error', reject);
      req.write(big.slice(0, 800));
      req.end(big.slice(800));
    });
    expect(streamed.status).toBe(413);
    expect(JSON.parse(streamed.body)).toMatchObject({ error: { code: 'payload_too_large' } });
    expect(h.ctx.checkCalls).toEqual([]);
  });

  it('refuses a body that is not JSON or not the expected shape', async () => {
    const h = await serve();
    const post = (body: string, type = 'application/json') =>
      fetch(`${h.url}/api/v1/check`, {
        method: 'POST',
        headers: { ...bearer(WRITE), 'content-type': type },
        body,
      });
    const notJson = await post('{targets:');
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as ErrorBody).error.code).toBe('invalid_body');
    const wrongShape = await post('{"targets": "web"}');
    expect(wrongShape.status).toBe(400);
    expect(((await wrongShape.json()) as ErrorBody).error.message).toMatch(/at targets/);
    const extra = await post('{"targets": [], "url": "http://127.0.0.1:22"}');
    expect(extra.status).toBe(400);
    expect((await post('web', 'text/plain')).status).toBe(415);
    expect(h.ctx.checkCalls).toEqual([]);
  });

  it('rate-limits each client with 429 and Retry-After', async () => {
    let clock = 0;
    const h = await serve({ rateLimit: { perSecond: 1, burst: 3 }, monotonicNow: () => clock });
    const statuses = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await fetch(`${h.url}/api/v1/status`, { headers: bearer(READ) })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await fetch(`${h.url}/api/v1/status`, { headers: bearer(READ) });
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(((await limited.json()) as ErrorBody).error.code).toBe('rate_limited');
    // Unauthenticated requests use up the bucket too: guessing tokens is rate-limited.
    clock = 1000;
    expect((await fetch(`${h.url}/api/v1/status`)).status).toBe(401);
    expect((await fetch(`${h.url}/api/v1/status`)).status).toBe(429);
    expect(h.api.stats().rateLimited).toBe(3);
  });
});

describe('SSRF guard on check', () => {
  it('never runs anything but a configured target, whatever the request names', async () => {
    const h = await serve();
    for (const target of ['http://127.0.0.1:22', '127.0.0.1:22', '10.0.0.1', '::1', 'db.internal:5432']) {
      const res = await fetch(`${h.url}/api/v1/check?target=${encodeURIComponent(target)}`, {
        method: 'POST',
        headers: bearer(WRITE),
      });
      expect(res.status, target).toBe(404);
      expect(((await res.json()) as ErrorBody).error.message).toBe(
        `no configured target named ${JSON.stringify(target)}; configured: "web", "db"`,
      );
    }
    const mixed = await fetch(`${h.url}/api/v1/check`, {
      method: 'POST',
      headers: { ...bearer(WRITE), 'content-type': 'application/json' },
      body: JSON.stringify({ targets: ['web', 'http://169.254.169.254/latest/meta-data'] }),
    });
    expect(mixed.status).toBe(404);
    const param = await fetch(`${h.url}/api/v1/check?url=http://127.0.0.1:22`, {
      method: 'POST',
      headers: bearer(WRITE),
    });
    expect(param.status).toBe(400);
    // Nothing reached check(): not the addresses, not even the valid name sent along with one.
    expect(h.ctx.checkCalls).toEqual([]);
  });
});

describe('event stream', () => {
  async function readUntil(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    pattern: RegExp,
  ): Promise<string> {
    const decoder = new TextDecoder();
    let text = '';
    while (!pattern.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended before ${pattern}: ${text}`);
      text += decoder.decode(value, { stream: true });
    }
    return text;
  }

  it('sends hello, then probe events from the context, and keepalives', async () => {
    const h = await serve({ keepaliveMs: 50 });
    const res = await fetch(`${h.url}/api/v1/events?token=${READ}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = res.body!.getReader();
    const hello = await readUntil(reader, /event: hello\ndata: .*\n\n/);
    expect(hello).toContain(`event: hello\ndata: {"version":"9.9.9","time":${NOW}}\n\n`);
    expect(h.ctx.events.listenerCount).toBe(1);
    await h.ctx.check(['web']);
    const probe = await readUntil(reader, /event: probe\ndata: .*\n\n/);
    const data = JSON.parse(/event: probe\ndata: (.*)\n\n/.exec(probe)![1]!) as { name: string; ok: boolean };
    expect(data).toMatchObject({ name: 'web', ok: true });
    h.ctx.events.emit({ event: 'flow', data: { canary: 'canary-us', coalminer: 'eu-west' } });
    await readUntil(reader, /event: flow\ndata: \{"canary":"canary-us","coalminer":"eu-west"\}\n\n/);
    await readUntil(reader, /: keepalive\n\n/);
    await reader.cancel();
    await expect.poll(() => h.ctx.events.listenerCount).toBe(0);
    expect(h.api.stats().events.clients).toBe(0);
  });

  it('refuses streams beyond the limit with 503', async () => {
    const h = await serve({ maxEventClients: 1 });
    const first = await fetch(`${h.url}/api/v1/events`, { headers: bearer(READ) });
    expect(first.status).toBe(200);
    const second = await fetch(`${h.url}/api/v1/events`, { headers: bearer(READ) });
    expect(second.status).toBe(503);
    expect(second.headers.get('retry-after')).toBe('5');
    expect(((await second.json()) as ErrorBody).error.code).toBe('too_many_streams');
    await first.body!.cancel();
    await expect.poll(() => h.api.stats().events.clients).toBe(0);
    const third = await fetch(`${h.url}/api/v1/events`, { headers: bearer(READ) });
    expect(third.status).toBe(200);
    await third.body!.cancel();
    expect(h.api.stats().events.refused).toBe(1);
  });

  it('drops a client that stops reading instead of buffering for it', async () => {
    const queueBytes = 64 * 1024;
    const h = await serve({ eventQueueBytes: queueBytes });
    const port = Number(new URL(h.url).port);
    const socket = connect({ host: '127.0.0.1', port });
    let closed = false;
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    await new Promise<void>((r) => socket.once('connect', r));
    socket.write(`GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${READ}\r\n\r\n`);
    await expect.poll(() => h.api.stats().events.clients).toBe(1);
    socket.pause(); // a client that never reads again

    // A fast reader alongside must keep its stream.
    const fast = await fetch(`${h.url}/api/v1/events`, { headers: bearer(READ) });
    const fastReader = fast.body!.getReader();
    let fastBytes = 0;
    const drainFast = (async () => {
      for (;;) {
        const { value, done } = await fastReader.read();
        if (done) return;
        fastBytes += value.length;
      }
    })().catch(() => {});
    await expect.poll(() => fastBytes).toBeGreaterThan(0); // its hello
    const base = fastBytes;

    const data = { name: 'web', padding: 'x'.repeat(8 * 1024) };
    const frameBytes = Buffer.byteLength(`event: probe\ndata: ${JSON.stringify(data)}\n\n`);
    let sent = 0;
    while (h.api.stats().events.dropped === 0 && sent < 20_000) {
      // Bursts of 4 events (32 KiB): the fast reader takes each before the next, the slow one never.
      for (let i = 0; i < 4; i++) h.ctx.events.emit({ event: 'probe', data });
      sent += 4;
      const deadline = Date.now() + 5000;
      while (fastBytes < base + sent * frameBytes && Date.now() < deadline) {
        await new Promise((r) => setImmediate(r));
      }
      expect(fastBytes).toBeGreaterThanOrEqual(base + sent * frameBytes);
    }
    const stats = h.api.stats().events;
    expect(stats.dropped).toBe(1);
    expect(stats.maxQueuedBytes).toBeLessThanOrEqual(queueBytes);
    expect(stats.clients).toBe(1);
    socket.resume(); // read what reached it: then the end the server sent
    await expect.poll(() => closed).toBe(true);
    expect(fastBytes).toBeGreaterThan(0);
    await fastReader.cancel();
    await drainFast;
    await expect.poll(() => h.ctx.events.listenerCount).toBe(0);
  });
});

describe('OpenAPI document', () => {
  it('lists every route of the router, and nothing else', () => {
    const doc = openApiDocument('1.2.3');
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    const routed = apiV1Routes.map((r) => `${r.method} ${r.path}`);
    expect(documented.sort()).toEqual(routed.sort());
    expect(doc.openapi).toBe('3.1.0');
    for (const r of apiV1Routes) {
      const op = doc.paths[r.path]![r.method.toLowerCase()]!;
      if (r.scope === null) expect(op.security, r.path).toEqual([]);
      if (r.scope === 'write') expect(JSON.stringify(op.security), r.path).toContain('write');
    }
  });

  it('resolves every $ref to a schema it defines', () => {
    const doc = openApiDocument('1.2.3');
    const text = JSON.stringify(doc);
    const schemas = (doc.components as { schemas: Record<string, unknown> }).schemas;
    const refs = [...text.matchAll(/"\$ref":"#\/components\/schemas\/([A-Za-z]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(10);
    for (const r of refs) expect(schemas, r).toHaveProperty(r);
  });
});
