import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../config/load.js';
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
    expect(await res.json()).toEqual({ error: 'no configured target named "127.0.0.1:22"' });
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

  it('answers wrong methods and paths with JSON errors', async () => {
    const get = await fetch(`${server.url}/check`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const missing = await fetch(`${server.url}/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toMatch(/no such endpoint/);
  });
});
