import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOpenFileLimit } from '../../src/api/connection-limits.js';
import { createLogger } from '../../src/core/log.js';
import { serveAgent, type ServedAgent } from '../support/agent-server.js';
import { holdIdleConnections, type IdleFlood } from '../support/idle-flood.js';
import { haveCommand } from '../support/require.js';

/** Sets this process's soft open-file limit (prlimit(1) on our own pid: Node has no setrlimit). */
function setSoftFileLimit(n: number): boolean {
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${n}:`], { stdio: 'ignore' });
    return readOpenFileLimit() === n;
  } catch {
    return false;
  }
}

async function timedHealthz(url: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${url}/healthz`);
  await res.json();
  if (!res.ok) throw new Error(`healthz ${res.status}`);
  return performance.now() - t0;
}

const canLimit = haveCommand('prlimit', 'install util-linux (apt-get install -y util-linux)');

describe.skipIf(!canLimit)('descriptors kept for probes under a flood of idle connections', () => {
  const original = readOpenFileLimit();
  let target: Server;
  let agent: ServedAgent;
  let flood: IdleFlood | undefined;
  let limit = 0;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    target = createServer((s) => s.end());
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    // A limit that 400 connections would exhaust: what this process holds now, plus 250.
    limit = readdirSync('/proc/self/fd').length + 250;
    if (!setSoftFileLimit(limit)) throw new Error('could not lower this process RLIMIT_NOFILE with prlimit');
    agent = await serveAgent({
      config: `targets:\n  - { name: local, kind: tcp, target: "127.0.0.1:${(target.address() as AddressInfo).port}" }`,
      // The defaults (512 connections, 64 a client), except timeouts long enough to outlast the test.
      limits: { idleTimeoutMs: 60_000, headersTimeoutMs: 60_000, requestTimeoutMs: 60_000 },
      log: createLogger({
        format: 'json',
        level: 'debug',
        stream: { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) },
      }),
    });
  });

  afterAll(async () => {
    await flood?.close();
    await agent?.close();
    target?.close();
    if (original !== undefined && Number.isFinite(original)) setSoftFileLimit(original);
  });

  it('lowers the cap to half the open-file limit, says so once, and keeps /healthz and probes working', async () => {
    const cap = Math.floor(limit / 2);
    expect(lines.filter((l) => l.level === 'warn')).toEqual([
      expect.objectContaining({ component: 'api', requested: 512, cap, openFileLimit: limit }),
    ]);
    const baseline = Math.min(...(await sequence(5, () => timedHealthz(agent.url))));

    // 400 silent connections from 10 addresses: 40 each, under the per-client cap.
    const addresses = Array.from({ length: 10 }, (_, i) => `127.0.0.${10 + i}`);
    flood = await holdIdleConnections(agent.port, 400, addresses);
    // Up to the cap, less the connections fetch keeps alive from the baseline.
    const held = flood.ready.open;
    expect(held).toBeLessThanOrEqual(cap);
    expect(held).toBeGreaterThan(cap - 5);
    expect(flood.ready.closed).toBe(400 - held);

    const during = await sequence(10, () => timedHealthz(agent.url));
    console.log('FIG', baseline, during, flood.ready);
    expect(Math.max(...during)).toBeLessThan(Math.max(100, 10 * baseline));
    const check = await fetch(`${agent.url}/check?target=local`, { method: 'POST' });
    expect(check.status).toBe(200);
    expect(((await check.json()) as { results: { ok: boolean }[] }).results).toEqual([
      expect.objectContaining({ name: 'local', ok: true }),
    ]);
    expect((await flood.counts()).open).toBe(held);
    const metrics = await (await fetch(`${agent.url}/metrics`)).text();
    expect(metrics).toContain(`coalmine_http_connections_max ${cap}`);
    expect(metrics).toContain(
      `coalmine_http_connections_refused_total{reason="max_connections"} ${400 - held}`,
    );
  });
});

async function sequence<T>(n: number, f: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(await f());
  return out;
}
