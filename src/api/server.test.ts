import { get } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../config/load.js';
import { registerTextFamily } from '../sinks/prometheus/exposition.js';
import { serveAgent, WRITE_TOKEN, type ServedAgent } from '../../test/support/agent-server.js';
import { startServer, type AgentServer } from './server.js';

describe('agent HTTP endpoints', () => {
  let tcp: Server;
  let agent: Agent;
  let server: AgentServer;
  let connections = 0;

  beforeAll(async () => {
    tcp = createServer((s) => {
      connections++;
      s.end();
    });
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    const port = (tcp.address() as AddressInfo).port;
    agent = new Agent(
      parseConfig(
        `targets:\n  - { name: up, kind: tcp, target: "127.0.0.1:${port}" }\n  - { name: down, kind: tcp, target: "127.0.0.1:1" }`,
      ),
    );
    server = await startServer(agent, '127.0.0.1', 0);
  });
  afterAll(async () => {
    await server.close();
    await agent.close();
    tcp.close();
  });

  it('POST /check runs every target now and returns their results', async () => {
    const res = await fetch(`${server.url}/check`, { method: 'POST' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      results: { name: string; ok: boolean; phases: Record<string, number>; error?: { code: string } }[];
    };
    const byName = Object.fromEntries(body.results.map((r) => [r.name, r]));
    expect(byName.up).toMatchObject({ ok: true });
    expect(byName.up!.phases.connect).toBeGreaterThan(0);
    expect(byName.down).toMatchObject({ ok: false, error: { code: 'refused' } });
  });

  it('POST /check?target=NAME runs only that target', async () => {
    const before = connections;
    const res = await fetch(`${server.url}/check?target=up`, { method: 'POST' });
    const body = (await res.json()) as { results: { name: string }[] };
    expect(body.results.map((r) => r.name)).toEqual(['up']);
    expect(connections).toBe(before + 1);
  });

  it('never probes an address taken from the request', async () => {
    const res = await fetch(`${server.url}/check?target=${encodeURIComponent('127.0.0.1:22')}`, {
      method: 'POST',
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { code: 'not_found', message: 'no configured target named "127.0.0.1:22"' },
    });
    const extra = await fetch(`${server.url}/check?url=http://127.0.0.1/`, { method: 'POST' });
    expect(extra.status).toBe(400);
  });

  it('serves /metrics with the results and /healthz', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toContain('probe_success{target="up",kind="tcp"} 1');
    expect(text).toContain('probe_success{target="down",kind="tcp"} 0');
    expect(text).toContain('coalmine_build_info{version=');
    const health = await fetch(`${server.url}/healthz`);
    expect(await health.json()).toEqual({ status: 'ok', targets: 2 });
  });

  it("streams /metrics as the registry's exposition, and answers HEAD without rendering a body", async () => {
    const res = await fetch(`${server.url}/metrics`);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const families = (text: string) => text.split('\n').filter((l) => l.startsWith('# TYPE '));
    const text = await res.text();
    expect(text.endsWith('\n')).toBe(true);
    expect(families(text)).toEqual(families(await agent.registry.metrics()));
    // fetch asks for gzip (and inflates it): the same families; a client that does not ask gets text.
    expect(res.headers.get('content-encoding')).toBe('gzip');
    const plain = await new Promise<{ encoding: string | undefined; body: string }>((resolve, reject) =>
      get(`${server.url}/metrics`, (r) => {
        let body = '';
        r.setEncoding('utf8').on('data', (c: string) => (body += c));
        r.on('end', () => resolve({ encoding: r.headers['content-encoding'], body }));
      }).on('error', reject),
    );
    expect(plain.encoding).toBeUndefined();
    expect(families(plain.body)).toEqual(families(text));
    const head = await fetch(`${server.url}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await head.text()).toBe('');
  });

  it('answers wrong methods and paths with JSON errors', async () => {
    const get = await fetch(`${server.url}/check`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const missing = await fetch(`${server.url}/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toMatch(
      /no such endpoint/,
    );
  });
});

describe('the check-now budget', () => {
  let tcp: Server;
  let probes = 0;
  let served: ServedAgent;

  beforeAll(async () => {
    tcp = createServer((s) => {
      probes++;
      s.end();
    });
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    const port = (tcp.address() as AddressInfo).port;
    served = await serveAgent({
      config: `targets:\n  - { name: local, kind: tcp, target: "127.0.0.1:${port}" }`,
      checkBudget: { perSecond: 1, burst: 5 },
    });
  });
  afterAll(async () => {
    await served.close();
    tcp.close();
  });

  it('runs at most the budget of probes for a flood of POST /check and /api/v1/check, on loopback too', async () => {
    const t0 = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        i % 2 === 0
          ? fetch(`${served.url}/check`, { method: 'POST' })
          : fetch(`${served.url}/api/v1/check`, {
              method: 'POST',
              headers: { authorization: `Bearer ${WRITE_TOKEN}` },
            }),
      ),
    );
    const seconds = (performance.now() - t0) / 1000;
    const ok = answers.filter((r) => r.status === 200);
    const limited = answers.filter((r) => r.status === 429);
    expect(ok.length + limited.length).toBe(40);
    // One bucket for both routes: 5 at once, and what refilled meanwhile at 1 a second.
    expect(ok.length).toBeGreaterThanOrEqual(5);
    expect(ok.length).toBeLessThanOrEqual(5 + Math.ceil(seconds));
    expect(probes).toBe(ok.length);
    for (const r of limited) expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const legacy = limited.find((r) => new URL(r.url).pathname === '/check');
    expect(await legacy?.json()).toEqual({
      error: { code: 'check_budget_spent', message: expect.stringMatching(/too many checks on demand/) },
    });
    const api = limited.find((r) => new URL(r.url).pathname === '/api/v1/check');
    expect(await api?.json()).toEqual({ error: { code: 'check_budget_spent', message: expect.any(String) } });
    const metrics = await (await fetch(`${served.url}/metrics`)).text();
    expect(metrics).toContain(`coalmine_http_checks_refused_total ${limited.length}`);
  });
});

describe('a /metrics client that goes away mid-scrape', () => {
  it('stops the render, and the server goes on answering', async () => {
    const agent = new Agent(parseConfig('targets: []'), { processMetrics: false });
    const server = await startServer(agent, '127.0.0.1', 0);
    const TARGETS = 200_000;
    let written = 0;
    registerTextFamily(agent.registry, {
      name: 'test_series',
      help: 'A large family that counts how far the render got',
      type: 'gauge',
      *lines() {
        for (let i = 0; i < TARGETS; i++) {
          written++;
          yield `test_series{target="t${i}"} ${i}\n`;
        }
      },
      reset() {},
    });
    try {
      // Read the first bytes, then hang up.
      await new Promise<void>((resolve, reject) => {
        const req = get(`${server.url}/metrics`, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (err) =>
          (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(err),
        );
      });
      const stoppedAt = written;
      // The render stops within a few slices of the hang-up, far short of the whole family.
      await new Promise((r) => setTimeout(r, 200));
      expect(written).toBeLessThan(TARGETS / 2);
      expect(written - stoppedAt).toBeLessThan(TARGETS / 4);
      const health = await fetch(`${server.url}/healthz`);
      expect(await health.json()).toEqual({ status: 'ok', targets: 0 });
    } finally {
      await server.close();
      await agent.close();
    }
  });
});
