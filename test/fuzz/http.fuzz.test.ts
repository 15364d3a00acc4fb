// Random bytes and malformed HTTP/1.1 at the agent's real HTTP server (src/api/server.ts, with /api/v1,
// tokens, a probe target and alerting): it must keep answering /healthz promptly, answer everything it
// answers with well-formed HTTP (and a JSON error under /api/v1), stay within its memory and never leave
// a promise rejected unhandled. Replay a failure with FUZZ_SEED=<seed printed in the test name>.
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiV1Routes } from '../../src/api/v1/routes/index.js';
import { serveAgent, READ_TOKEN, WRITE_TOKEN, type ServedAgent } from '../support/agent-server.js';
import { prng, type Prng } from '../support/prng.js';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const FUZZ_MS = Number(process.env.FUZZ_MS ?? 15_000);
const WORKERS = 6;
/** A complete request gets an answer (or a close) within this, on a loaded machine too. */
const ANSWER_MS = 5000;

interface Case {
  kind: string;
  bytes: Buffer;
  /** The request is complete and well-formed up to its body: it must be answered. */
  complete: boolean;
  /**
   * Parseable by Node: an error answer must be JSON, `{error: {code, message}}` when the path (its dot
   * segments resolved, as the server does) is under /api/v1.
   */
  json: boolean;
  head: boolean;
  /** Close right after sending (a partial request): nothing to check but the server's health. */
  abandon: boolean;
}

interface Parsed {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

const TOKEN_CHARS = "!#$%&'*+-.^_`|~ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEADER_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[ \t]*[^\r\n]*$/;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}

/** The first response in `buf`, or why it is not well-formed HTTP/1.1; undefined while incomplete. */
function parseResponse(buf: Buffer, head: boolean, ended: boolean): Parsed | string | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0)
    return ended
      ? `no complete header block in ${JSON.stringify(buf.toString('latin1', 0, 200))}`
      : undefined;
  const [statusLine = '', ...lines] = buf.toString('latin1', 0, end).split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3}) [^\r\n]*$/.exec(statusLine);
  if (!m) return `bad status line ${JSON.stringify(statusLine)}`;
  const headers = new Map<string, string>();
  for (const l of lines) {
    if (!HEADER_LINE.test(l)) return `bad header line ${JSON.stringify(l)}`;
    const i = l.indexOf(':');
    headers.set(l.slice(0, i).toLowerCase(), l.slice(i + 1).trim());
  }
  const status = Number(m[1]);
  let rest = buf.subarray(end + 4);
  if (head || status === 204 || status === 304) return { status, headers, body: Buffer.alloc(0) };
  const length = headers.get('content-length');
  if (length !== undefined) {
    if (!/^\d+$/.test(length)) return `bad content-length ${length}`;
    if (rest.length < Number(length))
      return ended ? `body cut short: ${rest.length} of ${length}` : undefined;
    return { status, headers, body: rest.subarray(0, Number(length)) };
  }
  if (headers.get('transfer-encoding') === 'chunked') {
    const chunks: Buffer[] = [];
    for (;;) {
      const eol = rest.indexOf('\r\n');
      if (eol < 0) return ended ? 'chunked body cut short' : undefined;
      const size = Number.parseInt(rest.toString('latin1', 0, eol), 16);
      if (!Number.isFinite(size)) return `bad chunk size ${JSON.stringify(rest.toString('latin1', 0, eol))}`;
      if (rest.length < eol + 2 + size + 2) return ended ? 'chunk cut short' : undefined;
      if (size === 0) return { status, headers, body: Buffer.concat(chunks) };
      chunks.push(rest.subarray(eol + 2, eol + 2 + size));
      rest = rest.subarray(eol + 2 + size + 2);
    }
  }
  // Neither: the body runs to the close.
  return ended ? { status, headers, body: rest } : undefined;
}

function randomToken(r: Prng, max = 12): string {
  return Array.from({ length: 1 + r.int(max) }, () => r.pick([...TOKEN_CHARS])).join('');
}

function randomJson(r: Prng, depth = 0): unknown {
  switch (r.int(depth > 2 ? 4 : 7)) {
    case 0:
      return r.pick([null, true, false]);
    case 1:
      return r.pick([0, -1, 1e308, 2 ** 53 + 1, 0.5, -0, 86_400 * 365]);
    case 2:
      return r.pick(['', 'web', 'local', '*', '../../etc/passwd', 'x'.repeat(300), '\u0000', '\ud800']);
    case 3:
      return r.int(3) === 0 ? r.bytes(8).toString('base64') : randomToken(r);
    case 4:
      return Array.from({ length: r.int(5) }, () => randomJson(r, depth + 1));
    default: {
      const keys = [
        'targets',
        'matchers',
        'durationSeconds',
        'comment',
        'startsAt',
        'endsAt',
        'rule',
        '__proto__',
      ];
      return Object.fromEntries(
        Array.from({ length: r.int(4) }, () => [r.pick(keys), randomJson(r, depth + 1)]),
      );
    }
  }
}

function randomApiPath(r: Prng): string {
  const route = r.pick(apiV1Routes);
  const path = route.path.replace(/\{[^}]+\}/g, () =>
    r.pick(['local', 'canary/x', '%', '%zz', '..', '%2e%2e', encodeURIComponent(randomToken(r)), '']),
  );
  const variants = [
    path,
    `${path}/`,
    `${path}/${randomToken(r)}`,
    `/${randomToken(r)}`,
    path.toUpperCase(),
    `${path}//`,
    '',
  ];
  let p = `/api/v1${r.pick(variants)}`;
  if (r.chance(0.4)) {
    const keys = ['target', 'from', 'to', 'step', 'format', 'limit', 'rule', 'token', randomToken(r, 4)];
    const values = ['local', '-1h', 'now', '1e309', 'csv', 'jsonl', '0', '-5', '%', READ_TOKEN, ''];
    p += `?${Array.from({ length: 1 + r.int(3) }, () => `${r.pick(keys)}=${r.pick(values)}`).join('&')}`;
  }
  return p;
}

function request(
  method: string,
  path: string,
  headers: string[],
  body: Buffer | undefined,
  extra: Partial<Case> = {},
): Omit<Case, 'kind'> {
  const head = [`${method} ${path} HTTP/1.1`, 'Host: agent.test', 'Connection: close', ...headers];
  if (body) head.push(`Content-Length: ${body.length}`);
  return {
    bytes: Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), body ?? Buffer.alloc(0)]),
    complete: true,
    json: true,
    head: method === 'HEAD',
    abandon: false,
    ...extra,
  };
}

function auth(r: Prng): string[] {
  return r.pick([
    [],
    [`Authorization: Bearer ${READ_TOKEN}`],
    [`Authorization: Bearer ${WRITE_TOKEN}`],
    [`Authorization: Bearer ${WRITE_TOKEN}x`],
    ['Authorization: Basic dXNlcjpwYXNz'],
    ['Authorization: Bearer'],
    [`Cookie: coalmine_token=${WRITE_TOKEN}`],
  ]);
}

const GENERATORS: Record<string, (r: Prng) => Omit<Case, 'kind'>> = {
  garbage: (r) => ({
    bytes: r.bytes(1 + r.int(2000)),
    complete: false,
    json: false,
    head: false,
    abandon: false,
  }),
  badRequestLine: (r) => {
    const line = r.pick([
      'GET\r\n\r\n',
      'GET / HTTP/9.9\r\nHost: x\r\n\r\n',
      `${randomToken(r)} / HTTP/1.1\r\nHost: x\r\n\r\n`,
      'G@T / HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /\u0000 HTTP/1.1\r\nHost: x\r\n\r\n',
      `GET /${'a'.repeat(20_000 + r.int(60_000))} HTTP/1.1\r\nHost: x\r\n\r\n`,
      'GET  /healthz  HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /healthz HTTP/1.1\nHost: x\n\n',
      'GET http://evil.test/healthz HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET * HTTP/1.1\r\nHost: x\r\n\r\n',
    ]);
    return { bytes: Buffer.from(line, 'latin1'), complete: false, json: false, head: false, abandon: false };
  },
  hugeHeaders: (r) =>
    request(
      'GET',
      '/api/v1/status',
      Array.from({ length: 1 + r.int(40) }, (_, i) => `X-Fill-${i}: ${'v'.repeat(r.int(4000))}`),
      undefined,
      { json: false }, // a 431 comes from Node's parser, before any route
    ),
  badChunked: (r) => {
    const chunk = r.pick([
      'zz\r\n',
      '-1\r\n',
      'ffffffffffffffffff\r\n',
      '5\r\nabc\r\n',
      '3;x=\u0001\r\nabc\r\n0\r\n\r\n',
      '1\r\nx',
      '\r\n',
    ]);
    const head = [
      `POST ${r.pick(['/api/v1/silences', '/api/v1/check', '/check'])} HTTP/1.1`,
      'Host: x',
      'Connection: close',
      'Transfer-Encoding: chunked',
      'Content-Type: application/json',
      ...auth(r),
    ];
    return {
      bytes: Buffer.from(`${head.join('\r\n')}\r\n\r\n${chunk}`, 'latin1'),
      complete: false,
      json: false,
      head: false,
      abandon: r.chance(0.3),
    };
  },
  partial: (r) => {
    const full = request(
      r.pick(['GET', 'POST']),
      randomApiPath(r),
      auth(r),
      Buffer.from('{"targets":["local"]}'),
    );
    return {
      ...full,
      bytes: full.bytes.subarray(0, r.int(full.bytes.length)),
      complete: false,
      abandon: true,
    };
  },
  api: (r) => {
    const method = r.pick([
      'GET',
      'GET',
      'POST',
      'POST',
      'DELETE',
      'PUT',
      'PATCH',
      'HEAD',
      'OPTIONS',
      randomToken(r, 6).toUpperCase(),
    ]);
    const body =
      method === 'POST' || r.chance(0.1)
        ? Buffer.from(
            r.chance(0.8) ? JSON.stringify(randomJson(r)) : r.bytes(r.int(300)).toString('latin1'),
            'latin1',
          )
        : undefined;
    const type = r.pick([
      'Content-Type: application/json',
      'Content-Type: text/plain',
      'Content-Type: application/json; charset=utf-8',
      '',
    ]);
    const headers = [
      ...auth(r),
      ...(type ? [type] : []),
      ...(r.chance(0.2) ? ['Origin: http://evil.test'] : []),
    ];
    const c = request(method, randomApiPath(r), headers, body);
    // Methods Node's parser does not know are refused before any route (a bare 400).
    return /^(GET|POST|DELETE|PUT|PATCH|HEAD|OPTIONS)$/.test(method) ? c : { ...c, json: false };
  },
  legacy: (r) =>
    request(
      r.pick(['GET', 'POST', 'HEAD', 'PUT', 'DELETE']),
      r.pick([
        '/metrics',
        '/healthz',
        '/check',
        '/check?target=local',
        '/check?target=127.0.0.1:22',
        '/',
        '/nope',
        '/%ff',
        '/..%2f..%2fetc%2fpasswd',
      ]),
      auth(r),
      r.chance(0.2) ? r.bytes(r.int(500)) : undefined,
    ),
  pipelined: (r) => {
    const a = request('GET', '/healthz', [], undefined);
    const b = request('POST', randomApiPath(r), auth(r), Buffer.from(JSON.stringify(randomJson(r))));
    return {
      ...a,
      bytes: Buffer.concat([
        Buffer.from(a.bytes.toString('latin1').replace('Connection: close\r\n', ''), 'latin1'),
        b.bytes,
      ]),
    };
  },
};

/** Whether the request's path, dot segments resolved as the server does, is under /api/v1. */
function underApi(bytes: Buffer): boolean {
  const target = /^\S+ (\S+) /.exec(bytes.toString('latin1', 0, 2000))?.[1] ?? '';
  try {
    const path = new URL(`http://agent.test${target}`).pathname;
    return path === '/api/v1' || path.startsWith('/api/v1/');
  } catch {
    return false;
  }
}

/** Sends one case on a fresh connection; resolves with a problem found, or undefined. */
function run(port: number, c: Case): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let settled = false;
    const done = (problem: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(problem);
    };
    const check = (ended: boolean) => {
      const buf = Buffer.concat(chunks);
      if (buf.length === 0) return ended ? done(undefined) : undefined; // closed without a word: allowed
      const p = parseResponse(buf, c.head, ended);
      if (p === undefined) return;
      if (typeof p === 'string') return done(p);
      if (c.json && p.status >= 400 && !c.head) {
        if (!/^application\/json/.test(p.headers.get('content-type') ?? ''))
          return done(`${p.status} without a JSON body (${p.headers.get('content-type')})`);
        let e: unknown;
        try {
          e = (JSON.parse(p.body.toString('utf8')) as { error?: unknown }).error;
        } catch {
          return done(`${p.status}: body is not JSON: ${p.body.toString('utf8', 0, 100)}`);
        }
        const shaped = underApi(c.bytes)
          ? typeof (e as { code?: unknown } | undefined)?.code === 'string' &&
            typeof (e as { message?: unknown }).message === 'string'
          : e !== undefined;
        if (!shaped) return done(`${p.status}: no error in ${p.body.toString('utf8', 0, 200)}`);
      }
      done(undefined);
    };
    const timer = setTimeout(() => done(c.complete ? `no answer in ${ANSWER_MS} ms` : undefined), ANSWER_MS);
    socket.on('error', () => check(true));
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      // An event stream never ends: its headers are the answer.
      if (Buffer.concat(chunks).includes('text/event-stream')) return done(undefined);
      check(false);
    });
    socket.on('end', () => check(true));
    socket.on('close', () => check(true));
    socket.once('connect', () => {
      socket.write(c.bytes);
      if (c.abandon) done(undefined);
      else if (!c.complete) socket.end();
    });
  });
}

describe(`fuzzing the agent HTTP server (FUZZ_SEED=${SEED})`, () => {
  let target: Server;
  let agent: ServedAgent;
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);

  beforeAll(async () => {
    process.on('unhandledRejection', onRejection);
    target = createServer((s) => s.end());
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    agent = await serveAgent({
      config: [
        'targets:',
        `  - { name: local, kind: tcp, target: "127.0.0.1:${(target.address() as AddressInfo).port}" }`,
        'alerting:',
        '  rules:',
        '    - { name: local-down, target: local, condition: { probeFailing: {} } }',
      ].join('\n'),
      // The agent's own check-now budget, and its limits but for a shorter headers timeout.
      checkBudget: { perSecond: 1, burst: 20 },
      limits: { headersTimeoutMs: 2000, requestTimeoutMs: 4000 },
      api: { rateLimit: false, maxBodyBytes: 64 * 1024 },
    });
  });
  afterAll(async () => {
    process.off('unhandledRejection', onRejection);
    await agent?.close();
    target?.close();
  });

  it('stays responsive, bounded and well-formed', async () => {
    const r = prng(SEED);
    const healthMs = async () => {
      const t0 = performance.now();
      const res = await fetch(`${agent.url}/healthz`, { signal: AbortSignal.timeout(ANSWER_MS) });
      await res.json();
      return performance.now() - t0;
    };
    for (let i = 0; i < 5; i++) await healthMs(); // warm up
    const baseline: number[] = [];
    for (let i = 0; i < 20; i++) baseline.push(await healthMs());
    const rssBefore = process.memoryUsage().rss / 2 ** 20;

    const problems: string[] = [];
    const counts = new Map<string, number>();
    const health: number[] = [];
    const end = performance.now() + FUZZ_MS;
    const kinds = Object.keys(GENERATORS);
    const worker = async () => {
      while (performance.now() < end && problems.length < 20) {
        const kind = r.pick(kinds);
        const c: Case = { kind, ...GENERATORS[kind]!(r) };
        counts.set(kind, (counts.get(kind) ?? 0) + 1);
        const problem = await run(agent.port, c);
        if (problem)
          problems.push(`${kind}: ${problem}; sent ${JSON.stringify(c.bytes.toString('latin1', 0, 300))}`);
      }
    };
    // RSS at each quarter: a leak keeps growing, a heap settling at its working size does not.
    const rssQuarters: number[] = [];
    const prober = async () => {
      const start = performance.now();
      while (performance.now() < end) {
        health.push(await healthMs());
        if ((performance.now() - start) / FUZZ_MS >= (rssQuarters.length + 1) / 4)
          rssQuarters.push(process.memoryUsage().rss / 2 ** 20);
        await new Promise((res) => setTimeout(res, 50));
      }
    };
    await Promise.all([...Array.from({ length: WORKERS }, worker), prober()]);
    // Still answering a probe on demand afterwards (the budget has refilled by then or answers 429).
    const after = await fetch(`${agent.url}/healthz`);
    const rss = process.memoryUsage().rss / 2 ** 20;

    const detail = `seed ${SEED}; cases ${JSON.stringify(Object.fromEntries(counts))}; health p50 ${percentile(health, 50).toFixed(1)} ms p99 ${percentile(health, 99).toFixed(1)} ms (baseline p99 ${percentile(baseline, 99).toFixed(1)} ms); rss ${rssBefore.toFixed(0)} -> ${rssQuarters.map((m) => m.toFixed(0)).join(' -> ')} -> ${rss.toFixed(0)} MiB`;
    console.log(detail);
    expect(problems, detail).toEqual([]);
    expect(rejections, detail).toEqual([]);
    expect(after.status, detail).toBe(200);
    expect(health.length, detail).toBeGreaterThan(10);
    expect(percentile(health, 99), detail).toBeLessThan(Math.max(100, 10 * percentile(baseline, 99)));
    // Bounded: the second half of the run adds little to what the first half settled at.
    expect(rss - rssBefore, detail).toBeLessThan(300);
    expect(rss - (rssQuarters[1] ?? rssBefore), detail).toBeLessThan(100);
    expect(
      [...counts.values()].reduce((a, b) => a + b, 0),
      detail,
    ).toBeGreaterThan(200);
  });
});
