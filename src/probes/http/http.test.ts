import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener } from 'node:http';
import { createSecureServer, createServer as createH2cServer } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleepAtLeast } from '../../../test/support/async.js';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../core/clock.js';
import type { ProbeResult } from '../../core/types.js';
import { loadIcmpAddon } from '../icmp/native.js';
import probe from './index.js';
import { selfSignedCert } from '../../../test/support/certs.js';

const MS = 1_000_000n;
// Timing assertions hold on an idle machine; on a loaded CI box the OS can pause this process for tens of
// milliseconds between two clock reads. A real mis-measurement fails every attempt, so retries hide no bug.
const TIMING = { retry: 2 };

function ctx(timeoutMs = 3000) {
  return { signal: AbortSignal.timeout(timeoutMs), clock: systemClock, timeoutMs };
}

function run(target: string, options: Record<string, unknown> = {}, timeoutMs = 3000): Promise<ProbeResult> {
  return probe.run(target, probe.options.parse(options), ctx(timeoutMs));
}

const servers: Server[] = [];
const connections = new Set<Socket>();

async function listen<S extends Server>(server: S, host = '127.0.0.1'): Promise<number> {
  servers.push(server);
  // TLS servers report the raw socket here too, so destroying these closes every kind of server.
  server.on('connection', (s: Socket) => connections.add(s));
  server.listen(0, host);
  await once(server, 'listening');
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

/** A test server; a handler whose promise rejects ends its response with a 500. */
async function httpServer(
  handler: (...args: Parameters<RequestListener>) => unknown,
  host = '127.0.0.1',
): Promise<string> {
  const server = createHttpServer((req, res) => {
    const done = handler(req, res);
    if (done instanceof Promise)
      done.catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
  });
  const port = await listen(server, host);
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

afterEach(async () => {
  for (const s of connections) s.destroy();
  connections.clear();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

function sumPhases(r: ProbeResult): bigint {
  return Object.values(r.phases).reduce((a, b) => a + (b ?? 0n), 0n);
}

function expectFailure(r: ProbeResult, code: string) {
  if (r.ok) throw new Error(`expected ${code}, got success`);
  expect(r.error.code, r.error.message).toBe(code);
  return r.error;
}

describe('http probe: plain HTTP', () => {
  it('reports every phase, and the phases add up to the run', TIMING, async () => {
    const base = await httpServer((_req, res) => res.end('hello'));
    const r = await run(`${base}/`);
    expect(r.ok).toBe(true);
    expect(Object.keys(r.phases).sort()).toEqual(['connect', 'processing', 'resolve', 'transfer']);
    const sum = sumPhases(r);
    expect(sum).toBeLessThanOrEqual(r.durationNs);
    expect(r.durationNs - sum).toBeLessThan(5n * MS);
    expect(r.values).toMatchObject({
      http_status_code: 200,
      http_version: 1.1,
      http_ssl: 0,
      http_redirects: 0,
      http_content_length: 5,
      http_uncompressed_body_length: 5,
      ip_protocol: 4,
    });
  });

  it('puts a slow server response in processing', TIMING, async () => {
    const base = await httpServer(async (_req, res) => {
      await sleepAtLeast(50);
      res.end('late');
    });
    const r = await run(base);
    expect(r.ok).toBe(true);
    expect(r.phases.processing!).toBeGreaterThanOrEqual(50n * MS);
    expect(r.phases.processing!).toBeLessThan(70n * MS);
    expect(r.phases.transfer!).toBeLessThan(20n * MS);
  });

  it('puts a slowly streamed body in transfer', TIMING, async () => {
    const base = await httpServer(async (_req, res) => {
      res.write('first part;');
      await sleepAtLeast(60);
      res.end('second part');
    });
    const r = await run(base, { failIfBodyNotMatchesRegexp: ['first part;second part'] });
    expect(r.ok).toBe(true);
    expect(r.phases.transfer!).toBeGreaterThanOrEqual(60n * MS);
    expect(r.phases.processing!).toBeLessThan(20n * MS);
  });

  it('fails with http_status on an unexpected status, keeping phases and the status', async () => {
    const base = await httpServer((_req, res) => {
      res.statusCode = 404;
      res.end('nope');
    });
    const r = await run(base);
    const error = expectFailure(r, 'http_status');
    expect(error.message).toBe('got status 404, expected 2xx');
    expect(r.values?.http_status_code).toBe(404);
    expect(r.phases.connect).toBeDefined();
    expect(r.phases.processing).toBeDefined();

    expect((await run(base, { validStatusCodes: [404] })).ok).toBe(true);
    const other = await run(base, { validStatusCodes: [200, 204] });
    expect(expectFailure(other, 'http_status').message).toBe('got status 404, expected one of 200, 204');
  });

  it('sends method, headers and body, and the URL host as Host', async () => {
    let seen: { method?: string; host?: string; token?: string; body: string } = { body: '' };
    const base = await httpServer(async (req, res) => {
      let body = '';
      for await (const chunk of req) body += String(chunk);
      seen = { method: req.method, host: req.headers.host, token: req.headers['x-token'] as string, body };
      res.end();
    });
    const r = await run(`${base}/submit?x=1`, {
      method: 'POST',
      headers: { 'X-Token': 't1' },
      body: '{"a":1}',
    });
    expect(r.ok).toBe(true);
    expect(seen).toEqual({
      method: 'POST',
      host: base.slice('http://'.length),
      token: 't1',
      body: '{"a":1}',
    });
  });

  it('follows redirects (a 303 after POST as GET) and counts them, or stops when told to', async () => {
    const methods: string[] = [];
    const base = await httpServer((req, res) => {
      methods.push(`${req.method} ${req.url}`);
      if (req.url === '/old') res.writeHead(302, { location: '/new' }).end();
      else if (req.url === '/form') res.writeHead(303, { location: '/done' }).end();
      else if (req.url === '/loop') res.writeHead(301, { location: '/loop' }).end();
      else res.end('arrived');
    });
    const followed = await run(`${base}/old`, { failIfBodyNotMatchesRegexp: ['arrived'] });
    expect(followed.ok).toBe(true);
    expect(followed.values).toMatchObject({ http_redirects: 1, http_status_code: 200 });
    expect(followed.detail?.url).toBe(`${base}/new`);

    const notFollowed = await run(`${base}/old`, { followRedirects: false });
    expect(expectFailure(notFollowed, 'http_status').message).toBe('got status 302, expected 2xx');
    expect(notFollowed.values).toMatchObject({ http_redirects: 0, http_status_code: 302 });
    expect((await run(`${base}/old`, { followRedirects: false, validStatusCodes: [302] })).ok).toBe(true);

    const posted = await run(`${base}/form`, { method: 'POST', body: 'a=1' });
    expect(posted.ok).toBe(true);
    expect(methods.at(-1)).toBe('GET /done');

    const loop = await run(`${base}/loop`, { maxRedirects: 3 });
    expect(expectFailure(loop, 'http_status').message).toContain('stopped after 3 redirects');
    expect(loop.values?.http_redirects).toBe(3);
  });

  it('checks the body against regexes and names the one that failed', async () => {
    const base = await httpServer((_req, res) => res.end('status: healthy\nversion 1.2.3'));
    expect((await run(base, { failIfBodyNotMatchesRegexp: ['healthy', 'version \\d+'] })).ok).toBe(true);
    expect((await run(base, { failIfBodyMatchesRegexp: ['(?i)ERROR'] })).ok).toBe(true);

    const missing = await run(base, { failIfBodyNotMatchesRegexp: ['healthy', 'database: up'] });
    expect(expectFailure(missing, 'validation').message).toContain('/database: up/');
    const forbidden = await run(base, { failIfBodyMatchesRegexp: ['(?i)HEALTHY'] });
    expect(expectFailure(forbidden, 'validation').message).toContain('failIfBodyMatchesRegexp');
  });

  it('gives up on a backtracking body regex after its time limit instead of stalling', async () => {
    // One line of 1 MiB without "foo": `.*foo.*` would backtrack for about half an hour.
    const base = await httpServer((_req, res) => res.end('a'.repeat(1 << 20)));
    const t0 = performance.now();
    const r = await run(base, { failIfBodyNotMatchesRegexp: ['.*foo.*'] });
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(expectFailure(r, 'validation').message).toMatch(
      /^the regular expression \/\.\*foo\.\*\/ took over 50 ms/,
    );
  });

  it('keeps a redirect to a long unsupported Location short in its message', async () => {
    const location = `ftp://${'a'.repeat(15_000)}`;
    const base = await httpServer((_req, res) => res.writeHead(302, { location }).end());
    const error = expectFailure(await run(base), 'protocol');
    expect(error.message).toMatch(
      /^redirect to unsupported scheme in "ftp:\/\/a+…\(14806 more characters\)"$/,
    );
  });

  it('checks JSON fields by dotted path', async () => {
    const doc = { status: 'ok', checks: [{ name: 'db', latencyMs: 12 }], ready: true };
    const base = await httpServer((_req, res) =>
      res.setHeader('content-type', 'application/json').end(JSON.stringify(doc)),
    );
    const pass = await run(base, {
      jsonConditions: [
        { path: 'status', equals: 'ok' },
        { path: 'checks.0.name', matches: '^d' },
        { path: 'ready', equals: true },
        { path: 'checks.0.latencyMs' },
      ],
    });
    expect(pass.ok).toBe(true);

    const wrong = await run(base, { jsonConditions: [{ path: 'status', equals: 'down' }] });
    expect(expectFailure(wrong, 'validation').message).toBe(
      'jsonConditions: field "status" is "ok", expected "down"',
    );
    const absent = await run(base, { jsonConditions: [{ path: 'checks.1.name' }] });
    expect(expectFailure(absent, 'validation').message).toContain('"checks.1.name" is missing');
    const noMatch = await run(base, { jsonConditions: [{ path: 'checks.0.latencyMs', matches: '^\\d$' }] });
    expect(expectFailure(noMatch, 'validation').message).toContain('does not match');

    const text = await httpServer((_req, res) => res.end('<html>'));
    const notJson = await run(text, { jsonConditions: [{ path: 'status', equals: 'ok' }] });
    expect(expectFailure(notJson, 'validation').message).toContain('not JSON');
  });

  it('stops reading at maxBodyBytes, and fails only when a body check needs more', async () => {
    const big = Buffer.alloc(200_000, 'a');
    const base = await httpServer((_req, res) => res.end(big));
    const counted = await run(base, { maxBodyBytes: 10_000 });
    expect(counted.ok).toBe(true);
    expect(counted.detail?.bodyTruncated).toBe(true);
    expect(counted.values?.http_uncompressed_body_length).toBeGreaterThan(10_000);
    expect(counted.values?.http_uncompressed_body_length).toBeLessThan(200_000);
    expect(counted.values?.http_content_length).toBe(200_000);

    const checked = await run(base, { maxBodyBytes: 10_000, failIfBodyMatchesRegexp: ['b'] });
    expect(expectFailure(checked, 'validation').message).toContain('maxBodyBytes');
    expect((await run(base, { failIfBodyMatchesRegexp: ['b'] })).ok).toBe(true);
  });

  it('decodes a gzip body for checks and reports both lengths', async () => {
    const text = 'compressible '.repeat(1000);
    const gz = gzipSync(text);
    const base = await httpServer((_req, res) => res.writeHead(200, { 'content-encoding': 'gzip' }).end(gz));
    const r = await run(base, {
      headers: { 'accept-encoding': 'gzip' },
      failIfBodyNotMatchesRegexp: ['^compressible'],
    });
    expect(r.ok).toBe(true);
    expect(r.values).toMatchObject({
      http_content_length: gz.length,
      http_uncompressed_body_length: text.length,
    });
  });

  it('fails with refused when nothing listens', async () => {
    const probeServer = createNetServer();
    const port = await listen(probeServer);
    servers.pop();
    await new Promise((resolve) => probeServer.close(resolve));
    const r = await run(`http://127.0.0.1:${port}/`);
    expect(expectFailure(r, 'refused').cause).toBe('ECONNREFUSED');
    expect(r.phases.resolve).toBeDefined();
    expect(r.phases.connect).toBeUndefined();
  });

  it('times out on a server that accepts and never answers, and closes its socket', async () => {
    const accepted: Socket[] = [];
    const port = await listen(
      createNetServer((s) => {
        accepted.push(s);
        s.resume();
      }),
    );
    const started = process.hrtime.bigint();
    const r = await run(`http://127.0.0.1:${port}/`, {}, 300);
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    expect(expectFailure(r, 'timeout').message).toBe('timed out after 300 ms');
    expect(elapsedMs).toBeGreaterThanOrEqual(290);
    expect(elapsedMs).toBeLessThan(400);
    expect(r.phases.connect).toBeDefined();
    expect(r.phases.processing).toBeUndefined();
    expect(accepted).toHaveLength(1);
    if (!accepted[0]!.readableEnded) await once(accepted[0]!, 'end');
  });

  it('times out on a TLS handshake that never completes', async () => {
    const port = await listen(createNetServer((s) => s.resume()));
    const r = await run(`https://127.0.0.1:${port}/`, {}, 200);
    expectFailure(r, 'timeout');
    expect(r.phases.connect).toBeDefined();
    expect(r.phases.tls).toBeUndefined();
  });

  it('times out on an HTTP/2 server that never answers, and closes the session', async () => {
    const server = createH2cServer(() => {});
    const sessionClosed = new Promise((resolve) => server.on('session', (s) => s.once('close', resolve)));
    const port = await listen(server as unknown as Server);
    const r = await run(`http://127.0.0.1:${port}/`, { httpVersion: '2' }, 200);
    expectFailure(r, 'timeout');
    await sessionClosed;
  });

  it('times out on a body that never ends', async () => {
    const base = await httpServer((_req, res) => res.write('partial'));
    const r = await run(base, {}, 300);
    expectFailure(r, 'timeout');
    expect(r.phases.processing).toBeDefined();
    expect(r.values?.http_status_code).toBe(200);
  });

  it('reports a malformed response as protocol', async () => {
    const port = await listen(createNetServer((s) => s.end('SSH-2.0-OpenSSH_9.6\r\n')));
    expectFailure(await run(`http://127.0.0.1:${port}/`), 'protocol');
  });

  it('reports a connection closed mid-body as reset', async () => {
    const port = await listen(
      createNetServer((s) => {
        s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this'));
      }),
    );
    expectFailure(await run(`http://127.0.0.1:${port}/`), 'reset');
  });

  it('reads chunked, close-delimited and interim (1xx) responses written by hand', async () => {
    const replies: Record<string, string> = {
      '/chunked':
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n' +
        '5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n',
      '/close': 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end',
      '/interim': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone',
    };
    const port = await listen(
      createNetServer((s) => {
        let head = '';
        s.on('data', (d) => {
          head += d.toString('latin1');
          const path = /^GET (\S+) /.exec(head)?.[1];
          if (!head.includes('\r\n\r\n') || path === undefined) return;
          // Byte by byte for the chunked reply, so the parser meets every boundary mid-token.
          const reply = Buffer.from(replies[path] ?? 'HTTP/1.1 404 Not Found\r\n\r\n', 'latin1');
          if (path !== '/chunked') return void s.end(reply);
          let i = 0;
          const next = () => (i < reply.length ? s.write(reply.subarray(i, ++i), next) : s.end());
          next();
        });
      }),
    );
    const base = `http://127.0.0.1:${port}`;
    const chunked = await run(`${base}/chunked`, { failIfBodyNotMatchesRegexp: ['^hello world$'] });
    expect(chunked.ok).toBe(true);
    expect(chunked.values?.http_uncompressed_body_length).toBe(11);
    const close = await run(`${base}/close`, {
      failIfBodyNotMatchesRegexp: ['^until the end$'],
      validHttpVersions: ['HTTP/1.0'],
    });
    expect(close.ok).toBe(true);
    expect(close.values).toMatchObject({ http_version: 1, http_content_length: 13 });
    const interim = await run(`${base}/interim`, {
      validStatusCodes: [201],
      failIfBodyNotMatchesRegexp: ['^done$'],
    });
    expect(interim.ok).toBe(true);
    expect(interim.values?.http_status_code).toBe(201);
  });

  it('sends no body for HEAD and reads no body after it', async () => {
    const base = await httpServer((req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.end(req.method === 'HEAD' ? undefined : Buffer.alloc(1000));
    });
    const r = await run(base, { method: 'HEAD' });
    expect(r.ok).toBe(true);
    expect(r.values).toMatchObject({ http_content_length: 1000, http_uncompressed_body_length: 0 });
  });

  it('refuses a header value that would inject a line into the request', async () => {
    let requests = 0;
    const base = await httpServer((_req, res) => void (requests++, res.end()));
    const r = await run(base, { headers: { 'x-a': 'v\r\nx-injected: 1' } });
    expect(r.ok).toBe(false);
    expect(requests).toBe(0);
  });

  it('times connect in the kernel where it can; a completed run lasts as long as its phases', async () => {
    const load = loadIcmpAddon();
    const kernel = load.ok && typeof load.addon.tcpInfo === 'function';
    const base = await httpServer((_req, res) => res.end('hello'));
    const before = process.hrtime.bigint();
    const r = await run(base);
    const wall = process.hrtime.bigint() - before;
    expect(r.ok).toBe(true);
    expect(r.detail?.timing).toBe(kernel ? 'kernel' : 'user');
    expect(r.durationNs).toBe(sumPhases(r));
    expect(r.durationNs <= wall).toBe(true);
    expect(r.phases.connect!).toBeGreaterThan(0n);
  });

  it('connects over IPv6 to ::1', async () => {
    const base = await httpServer((req, res) => res.end(req.headers.host), '::1');
    const r = await run(`${base}/`, { failIfBodyNotMatchesRegexp: ['^\\[::1\\]:\\d+$'] });
    expect(r.ok).toBe(true);
    expect(r.values?.ip_protocol).toBe(6);
    expect(r.detail?.address).toBe('::1');
  });
});

describe('http probe: header checks, as blackbox_exporter judges them', () => {
  // Two X-Cache lines: Node's joined `headers` would read "HIT, MISS", which neither ^MISS$ nor ^HIT$ matches.
  const withHeaders: RequestListener = (_req, res) => {
    res.setHeader('X-Cache', ['HIT', 'MISS']);
    res.setHeader('Server', 'nginx/1.25');
    res.end('ok');
  };
  const check = (base: string, o: Record<string, unknown>) => run(`${base}/`, o);

  it('failIfHeaderMatchesRegexp fails when any one value matches, and names the value', async () => {
    const base = await httpServer(withHeaders);
    const r = await check(base, { failIfHeaderMatchesRegexp: [{ header: 'x-cache', regexp: '^MISS$' }] });
    expect(expectFailure(r, 'validation').message).toBe(
      'header x-cache value "MISS" matches failIfHeaderMatchesRegexp /^MISS$/',
    );
    const none = await check(base, { failIfHeaderMatchesRegexp: [{ header: 'X-CACHE', regexp: '^STALE$' }] });
    expect(none.ok).toBe(true);
  });

  it('failIfHeaderNotMatchesRegexp passes when one value matches, fails when none does', async () => {
    const base = await httpServer(withHeaders);
    const one = await check(base, {
      failIfHeaderNotMatchesRegexp: [{ header: 'X-Cache', regexp: '^MISS$' }],
    });
    expect(one.ok).toBe(true);
    const r = await check(base, { failIfHeaderNotMatchesRegexp: [{ header: 'X-Cache', regexp: '^STALE$' }] });
    expect(expectFailure(r, 'validation').message).toBe(
      'no value of header X-Cache ("HIT", "MISS") matches failIfHeaderNotMatchesRegexp /^STALE$/',
    );
  });

  it('a missing header fails either check unless allowMissing', async () => {
    const base = await httpServer(withHeaders);
    for (const key of ['failIfHeaderMatchesRegexp', 'failIfHeaderNotMatchesRegexp']) {
      const missing = await check(base, { [key]: [{ header: 'X-Debug', regexp: 'on' }] });
      expect(expectFailure(missing, 'validation').message).toBe(
        `header X-Debug is missing (${key} /on/; set allowMissing to pass without it)`,
      );
      const allowed = await check(base, { [key]: [{ header: 'X-Debug', regexp: 'on', allowMissing: true }] });
      expect(allowed.ok).toBe(true);
    }
  });

  it('judges headers after the status and before the body', async () => {
    const base = await httpServer((_req, res) => {
      res.statusCode = 503;
      res.setHeader('Server', 'nginx');
      res.end('down');
    });
    const r = await check(base, {
      failIfHeaderMatchesRegexp: [{ header: 'Server', regexp: 'nginx' }],
      failIfBodyMatchesRegexp: ['down'],
    });
    expect(expectFailure(r, 'http_status').message).toMatch(/got status 503/);
    const ok = await check(base, {
      validStatusCodes: [503],
      failIfHeaderMatchesRegexp: [{ header: 'Server', regexp: 'nginx' }],
      failIfBodyMatchesRegexp: ['down'],
    });
    expect(expectFailure(ok, 'validation').message).toMatch(/^header Server value "nginx"/);
  });

  it('judges each value over HTTP/2 too', async () => {
    const port = await listen(createH2cServer(withHeaders as never) as unknown as Server);
    const r = await run(`http://127.0.0.1:${port}/`, {
      httpVersion: '2',
      failIfHeaderNotMatchesRegexp: [{ header: 'x-cache', regexp: '^HIT$' }],
      failIfHeaderMatchesRegexp: [{ header: 'x-cache', regexp: '^MISS$' }],
    });
    expect(expectFailure(r, 'validation').message).toBe(
      'header x-cache value "MISS" matches failIfHeaderMatchesRegexp /^MISS$/',
    );
  });

  it('refuses an empty header name, an empty or invalid regexp, and unknown fields', () => {
    const issues = (spec: unknown) =>
      probe.options.safeParse({ failIfHeaderMatchesRegexp: [spec] }).error?.issues.map((i) => i.message);
    expect(issues({ header: '', regexp: 'x' })).toEqual(['must name a header']);
    expect(issues({ header: 'Server', regexp: '' })).toEqual(['must be a regular expression, not empty']);
    expect(issues({ header: 'Server', regexp: '(' })).toEqual(['not a valid regular expression']);
    expect(issues({ header: 'Server', regexp: 'x', allow_missing: true })?.[0]).toMatch(/allow_missing/);
  });
});

describe('http probe: HTTP/2 without TLS', () => {
  it('speaks prior-knowledge h2c when asked, and checks the version', async () => {
    const port = await listen(createH2cServer((_req, res) => res.end('over h2c')) as unknown as Server);
    const r = await run(`http://127.0.0.1:${port}/`, {
      httpVersion: '2',
      validHttpVersions: ['HTTP/2.0'],
      failIfBodyNotMatchesRegexp: ['h2c'],
    });
    expect(r.ok).toBe(true);
    expect(r.values?.http_version).toBe(2);
    expect(Object.keys(r.phases).sort()).toEqual(['connect', 'processing', 'resolve', 'transfer']);
  });

  it('fails with http_version when the response version is not valid', async () => {
    const base = await httpServer((_req, res) => res.end());
    const r = await run(base, { validHttpVersions: ['2'] });
    expect(expectFailure(r, 'http_version').message).toBe('got HTTP/1.1, expected HTTP/2');
  });
});

describe('http probe: HTTPS', () => {
  let dir: string;
  let caFile: string;
  let serverKey: Buffer;
  let serverCert: Buffer;
  let clientCertFile: string;
  let clientKeyFile: string;
  let notAfterSeconds: number;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'coalmine-http-'));
    const server = selfSignedCert(dir, 'server');
    const client = selfSignedCert(dir, 'client', { subject: '/CN=coalmine-client', san: 'DNS:client' });
    caFile = server.certFile;
    serverCert = server.cert;
    serverKey = server.key;
    clientCertFile = client.certFile;
    clientKeyFile = client.keyFile;
    notAfterSeconds = server.notAfterSeconds;
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function httpsServer(extra: Record<string, unknown> = {}): Promise<string> {
    const server = createHttpsServer({ key: serverKey, cert: serverCert, ...extra }, (_req, res) =>
      res.end('secure'),
    );
    return `https://127.0.0.1:${await listen(server)}`;
  }

  it('fails with tls on an untrusted certificate by default, keeping the cause', async () => {
    const r = await run(await httpsServer());
    const error = expectFailure(r, 'tls');
    expect(error.cause).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(r.phases.connect).toBeDefined();
    expect(r.phases.tls).toBeUndefined();
  });

  it('passes with the CA file, reporting TLS phase and certificate expiry', async () => {
    const r = await run(await httpsServer(), { tls: { caFile } });
    expect(r.ok).toBe(true);
    expect(Object.keys(r.phases).sort()).toEqual(['connect', 'processing', 'resolve', 'tls', 'transfer']);
    expect(r.values?.http_ssl).toBe(1);
    expect(Math.abs(r.values!.ssl_earliest_cert_expiry! - notAfterSeconds)).toBeLessThan(86_400);
    expect(r.values?.ssl_last_chain_expiry_timestamp_seconds).toBe(r.values?.ssl_earliest_cert_expiry);
    expect(r.detail?.certSubject).toBe('CN=localhost');
  });

  it('passes with insecureSkipVerify and still reports expiry', async () => {
    const r = await run(await httpsServer(), { tls: { insecureSkipVerify: true } });
    expect(r.ok).toBe(true);
    expect(Math.abs(r.values!.ssl_earliest_cert_expiry! - notAfterSeconds)).toBeLessThan(86_400);
    expect(r.values?.ssl_last_chain_expiry_timestamp_seconds).toBeUndefined();
    expect(r.detail?.tlsAuthorizationError).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
  });

  it('checks the certificate against the host name or serverName', async () => {
    const base = await httpsServer();
    const port = new URL(base).port;
    const byName = await run(`https://localhost:${port}/`, { tls: { caFile }, ipProtocol: 'ip4' });
    expect(byName.ok).toBe(true);
    const mismatch = await run(base, { tls: { caFile, serverName: 'other.example' } });
    expect(expectFailure(mismatch, 'tls').cause).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('presents a client certificate when the server requires one', async () => {
    const base = await httpsServer({
      requestCert: true,
      rejectUnauthorized: true,
      ca: readFileSync(clientCertFile),
    });
    const without = await run(base, { tls: { caFile } });
    expectFailure(without, 'tls');
    const withCert = await run(base, {
      tls: { caFile, certFile: clientCertFile, keyFile: clientKeyFile },
      failIfBodyNotMatchesRegexp: ['secure'],
    });
    expect(withCert.ok).toBe(true);
  });

  it('negotiates HTTP/2 over TLS with ALPN', async () => {
    const server = createSecureServer({ key: serverKey, cert: serverCert }, (_req, res) =>
      res.end('h2 body'),
    );
    const port = await listen(server as unknown as Server);
    const r = await run(`https://127.0.0.1:${port}/`, {
      httpVersion: '2',
      tls: { caFile },
      failIfBodyNotMatchesRegexp: ['h2 body'],
    });
    expect(r.ok).toBe(true);
    expect(r.values?.http_version).toBe(2);
    expect(r.detail?.alpn).toBe('h2');
    expect(r.phases.tls).toBeDefined();
  });

  it('falls back to HTTP/1.1 when the server does not offer h2', async () => {
    const r = await run(await httpsServer(), { httpVersion: 2, tls: { caFile } });
    expect(r.ok).toBe(true);
    expect(r.values?.http_version).toBe(1.1);
  });

  it('reports an unreadable CA file clearly', async () => {
    const r = await run(await httpsServer(), { tls: { caFile: join(dir, 'missing.pem') } });
    const error = expectFailure(r, 'error');
    expect(error.message).toContain('tls.caFile');
    expect(error.cause).toBe('ENOENT');
  });
});

describe('http probe: definition', () => {
  it('accepts http and https URLs and says what a target looks like otherwise', () => {
    expect(probe.validateTarget('https://example.com/health')).toBeUndefined();
    expect(probe.validateTarget('http://[::1]:8080/')).toBeUndefined();
    expect(probe.validateTarget('example.com')).toContain('http://host');
    expect(probe.validateTarget('ftp://example.com/')).toContain('scheme must be http or https');
    expect(probe.validateTarget('https://user:pw@example.com/')).toContain('headers.Authorization');
  });

  it('has defaults for everything and rejects bad options', () => {
    const defaults = probe.options.parse({});
    expect(defaults).toMatchObject({
      method: 'GET',
      followRedirects: true,
      maxRedirects: 10,
      httpVersion: '1.1',
      maxBodyBytes: 1024 * 1024,
      tls: { insecureSkipVerify: false },
    });
    expect(probe.options.safeParse({ failIfBodyMatchesRegexp: ['('] }).success).toBe(false);
    expect(probe.options.safeParse({ timeout: 5 }).success).toBe(false);
    expect(probe.options.safeParse({ tls: { certFile: 'a.pem' } }).success).toBe(false);
  });
});
