// The served OpenAPI document against the real answers of every route: each response body (and each
// event of the stream, each line of an export) must validate against the schema the document gives
// for that operation, status and media type, with a JSON Schema 2020-12 validator (ajv), not zod.
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiFixture, NOW } from '../../../test/support/api-fixture.js';
import type { MemoryContext } from '../../../test/support/memory-context.js';
import { closeServedApis, READ, serveApi, WRITE } from '../../../test/support/serve-api.js';
import type { ProbeReport } from '../../core/report.js';
import type { OpenApiDocument } from './openapi.js';
import { apiV1Routes } from './routes/index.js';

const MIN = 60_000;

function context(): MemoryContext {
  const { ctx, store } = apiFixture(true, {
    canaries: [
      {
        canary: 'canary-us',
        coalminer: 'eu-west',
        due: 10,
        attempted: 9,
        sent: 9,
        sendFailed: 0,
        behindSchedule: 1,
        behindScheduleSeconds: 0.5,
      },
    ],
    probe: (t): Omit<ProbeReport, 'name' | 'kind' | 'target' | 'time'> =>
      t.name === 'db'
        ? {
            ok: false,
            durationSeconds: 2,
            phases: {},
            error: { code: 'timeout', message: 'no answer in 2 s' },
          }
        : { ok: true, durationSeconds: 0.004, networkSeconds: 0.003, phases: { connect: 0.001 } },
    alerts: {
      rules: [
        {
          rule: 'web-slow',
          subject: { target: 'web' },
          condition: 'p95 latency > 0.25 s',
          state: 'firing',
          activeSince: NOW - 10 * MIN,
          lastValue: 0.31,
          labels: { severity: 'page' },
        },
        { rule: 'eu-loss', subject: { canary: 'canary-us', coalminer: 'eu-west' }, condition: 'loss > 1 %' },
      ],
      history: [{ rule: 'web-slow', from: 'ok', to: 'firing', at: NOW - 10 * MIN, value: 0.31 }],
    },
  });
  store.addSchedule({
    time: NOW - 10 * MIN,
    canary: 'canary-us',
    coalminer: 'eu-west',
    due: 10,
    attempted: 9,
    behind: 1,
    behindSeconds: 0.5,
  });
  return ctx;
}

let origin: string;
let ctx: MemoryContext;
let doc: OpenApiDocument;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats.default(ajv);
/** "METHOD /path STATUS" of every answer checked. */
const checked = new Set<string>();

beforeAll(async () => {
  ctx = context();
  ({ origin } = await serveApi(ctx, { now: () => NOW, rateLimit: false }));
  const res = await fetch(`${origin}/api/v1/openapi.json`);
  doc = (await res.json()) as OpenApiDocument;
  ajv.addSchema(doc, 'openapi');
});
afterAll(closeServedApis);

const pointer = (...parts: string[]) =>
  'openapi#/' + parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

/** Validates one value against the document's schema for the operation, status and media type. */
function conforms(path: string, method: string, status: number, type: string, value: unknown): void {
  const op = doc.paths[path]?.[method.toLowerCase()];
  expect(op, `${method} ${path} is documented`).toBeDefined();
  const answers = op!.responses as Record<string, { content?: Record<string, unknown> }>;
  expect(answers, `${method} ${path} documents ${status}`).toHaveProperty(String(status));
  expect(answers[String(status)]!.content, `${method} ${path} ${status} documents ${type}`).toHaveProperty([
    type,
  ]);
  const validate = ajv.getSchema(
    pointer('paths', path, method.toLowerCase(), 'responses', String(status), 'content', type, 'schema'),
  );
  expect(validate, 'the schema compiles').toBeDefined();
  const ok = validate!(value);
  expect(
    validate!.errors ?? [],
    `${method} ${path} ${status}: ${JSON.stringify(value).slice(0, 300)}`,
  ).toEqual([]);
  expect(ok).toBe(true);
  checked.add(`${method} ${path} ${status}`);
}

async function call(
  method: string,
  path: string,
  opts: { url?: string; token?: string | null; body?: unknown; type?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = {};
  if (opts.token !== null)
    headers.authorization = `Bearer ${opts.token ?? (method === 'GET' ? READ : WRITE)}`;
  if (opts.body !== undefined) headers['content-type'] = opts.type ?? 'application/json';
  return fetch(`${origin}/api/v1${opts.url ?? path}`, {
    method,
    headers,
    ...(opts.body !== undefined
      ? { body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) }
      : {}),
  });
}

/** Calls and validates a JSON answer. */
async function json(method: string, path: string, status: number, opts: Parameters<typeof call>[2] = {}) {
  const res = await call(method, path, opts);
  expect(res.status, `${method} ${opts.url ?? path}`).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
  const body = (await res.json()) as unknown;
  conforms(path, method, status, 'application/json', body);
  return body;
}

describe('every answer of every route matches the served OpenAPI document', () => {
  it('the JSON answers', async () => {
    await ctx.check(); // a last run for each target
    await json('GET', '/targets', 200);
    await json('GET', '/flows', 200);
    await json('GET', '/targets/{name}/series', 200, { url: '/targets/web/series?step=5m' });
    await json('GET', '/flows/{canary}/{coalminer}/series', 200, {
      url: '/flows/canary-us/eu-west/series?step=1m',
    });
    await json('GET', '/flows/{canary}/{coalminer}/schedule', 200, {
      url: '/flows/canary-us/eu-west/schedule?step=1m',
    });
    await json('GET', '/matrix', 200);
    await json('POST', '/check', 200, { url: '/check?target=web', body: { targets: ['db'] } });
    await json('GET', '/status', 200);
    await json('GET', '/whoami', 200);
    await json('GET', '/alerts', 200);
    await json('GET', '/alerts/history', 200, { url: '/alerts/history?rule=web-slow&limit=10' });
    const silence = (await json('POST', '/silences', 201, {
      body: { matchers: { alertname: 'web-slow' }, durationSeconds: 600, comment: 'deploy' },
    })) as { id: string };
    await json('GET', '/silences', 200);
    const ended = await call('DELETE', '/silences/{id}', { url: `/silences/${silence.id}` });
    expect(ended.status).toBe(204);
    expect(await ended.text()).toBe('');
    expect(doc.paths['/silences/{id}']!.delete!.responses).toHaveProperty('204');
    checked.add('DELETE /silences/{id} 204');
    const openapi = await fetch(`${origin}/api/v1/openapi.json`);
    conforms('/openapi.json', 'GET', 200, 'application/json', await openapi.json());
  });

  it('the error answers', async () => {
    await json('GET', '/targets', 401, { token: null });
    await json('POST', '/check', 403, { token: READ });
    await json('GET', '/targets/{name}/series', 404, { url: '/targets/nope/series' });
    await json('GET', '/targets/{name}/series', 400, { url: '/targets/web/series?step=soon' });
    await json('POST', '/check', 400, { body: { targets: 'web' } });
    await json('POST', '/check', 415, { body: 'web', type: 'text/plain' });
    await json('POST', '/silences', 400, { body: { matchers: {} } });
    await json('DELETE', '/silences/{id}', 404, { url: '/silences/nope' });
    await json('GET', '/alerts/history', 404, { url: '/alerts/history?rule=nope' });
    await json('GET', '/export', 400, { url: '/export' });
  });

  it('the streams: every export line and every event', async () => {
    const range = `from=${NOW - 30 * MIN}&to=${NOW + 1}`; // 30 of the fixture's runs
    const jsonl = await call('GET', '/export', { url: `/export?target=web&${range}` });
    expect(jsonl.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    const lines = (await jsonl.text()).trimEnd().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(30); // the hour's runs in range, and the checks'
    for (const line of lines) conforms('/export', 'GET', 200, 'application/x-ndjson', JSON.parse(line));
    const csv = await call('GET', '/export', { url: `/export?target=web&${range}&format=csv` });
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    conforms('/export', 'GET', 200, 'text/csv', await csv.text());

    const res = await call('GET', '/events');
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const seen = new Set<string>();
    const events = doc.paths['/events']!.get!['x-events'] as Record<string, unknown>;
    expect(Object.keys(events).sort()).toEqual(['alert', 'flow', 'hello', 'probe']);
    const emitted = (async () => {
      await ctx.check(['web']);
      ctx.events.emit({
        event: 'flow',
        data: ((await (await call('GET', '/flows')).json()) as { flows: unknown[] }).flows[0],
      });
      ctx.alerts!.transition('eu-loss', 'pending', 0.02, NOW);
    })();
    while (seen.size < 4) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n')) {
        const frame = text.slice(0, end);
        text = text.slice(end + 2);
        const m = /^event: (\w+)\ndata: (.*)$/m.exec(frame);
        if (!m) continue;
        const validate = ajv.getSchema(pointer('paths', '/events', 'get', 'x-events', m[1]!));
        expect(validate, m[1]).toBeDefined();
        const data = JSON.parse(m[2]!) as unknown;
        expect(validate!(data), `${m[1]}: ${m[2]!.slice(0, 200)} ${JSON.stringify(validate!.errors)}`).toBe(
          true,
        );
        seen.add(m[1]!);
      }
    }
    await emitted;
    await reader.cancel();
    expect([...seen].sort()).toEqual(['alert', 'flow', 'hello', 'probe']);
    checked.add('GET /events 200');
  });

  it('has checked a success of every documented operation', () => {
    for (const r of apiV1Routes) {
      const success = Object.keys(r.schema.response)[0];
      expect(checked, `${r.method} ${r.path}`).toContain(`${r.method} ${r.path} ${success}`);
    }
  });
});
