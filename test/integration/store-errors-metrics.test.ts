// The store writer's drops and errors were only in /api/v1/status, whose lastError stayed after the store
// recovered (issue 9, item 9). The agent that `coalmine run` starts, on a real SQLite file that another
// connection locks for a while.
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type AgentStack } from '../../src/agent/stack.js';
import type { AgentStatus } from '../../src/api/v1/contract.js';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { waitFor } from '../support/net.js';
import { haveCommand } from '../support/require.js';

const TOKEN = 'store-metrics-token-0123456789abcdef';

describe('store errors in /metrics and /api/v1/status', () => {
  let dir = '';
  let target: Server;
  let stack: AgentStack;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coalmine-store-metrics-'));
    target = createServer((s) => s.end());
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    const config = parseConfig(`
store: { url: "sqlite:${join(dir, 'agent.db')}" }
api: { tokens: [{ name: ops, token: ${TOKEN}, scopes: [read] }] }
targets:
  - { name: db, kind: tcp, target: "127.0.0.1:${(target.address() as AddressInfo).port}", interval: 100ms }
`);
    config.listen = { host: '127.0.0.1', port: 0 };
    stack = await startStack(config, { log: silentLogger });
  });
  afterAll(async () => {
    await stack?.close();
    target?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const status = async (): Promise<AgentStatus['store']> => {
    const res = await fetch(`${stack.server.url}/api/v1/status`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    return ((await res.json()) as AgentStatus).store;
  };
  const metrics = async () => (await fetch(`${stack.server.url}/metrics`)).text();
  const value = (text: string, name: string) => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    if (!m) throw new Error(`no ${name} in /metrics`);
    return Number(m[1]);
  };

  it('exports writes, drops, errors and whether writes succeed, and clears lastError once they do again', async () => {
    await waitFor('a first write', async () => ((await status()).written > 0 ? true : undefined));
    const healthy = await metrics();
    expect(value(healthy, 'coalmine_store_up')).toBe(1);
    expect(value(healthy, 'coalmine_store_write_errors_total')).toBe(0);
    expect(value(healthy, 'coalmine_store_dropped_total')).toBe(0);
    expect(value(healthy, 'coalmine_store_overview_dropped_total')).toBe(0);
    expect(value(healthy, 'coalmine_store_last_error_timestamp_seconds')).toBe(0);
    expect(value(healthy, 'coalmine_store_written_total')).toBeGreaterThan(0);

    // Another connection holds the write lock: every write fails with SQLITE_BUSY after the busy timeout.
    const locker = new Database(join(dir, 'agent.db'));
    const lockedAt = Date.now();
    locker.exec('BEGIN EXCLUSIVE');
    try {
      const failing = await waitFor('a failed write', async () => {
        const s = await status();
        return s.lastError ? s : undefined;
      });
      expect(failing.lastError).toMatch(/locked/);
      const down = await metrics();
      expect(value(down, 'coalmine_store_up')).toBe(0);
      expect(value(down, 'coalmine_store_write_errors_total')).toBeGreaterThan(0);
      expect(value(down, 'coalmine_store_last_error_timestamp_seconds') * 1000).toBeGreaterThanOrEqual(
        lockedAt - 1000,
      );
      expect(value(down, 'coalmine_store_queued')).toBeGreaterThan(0);
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }

    const recovered = await waitFor('writes again', async () => {
      const s = await status();
      return s.lastError === undefined ? s : undefined;
    });
    expect(recovered).not.toHaveProperty('lastError');
    const up = await metrics();
    expect(value(up, 'coalmine_store_up')).toBe(1);
    expect(value(up, 'coalmine_store_write_errors_total')).toBeGreaterThan(0);
    expect(value(up, 'coalmine_store_last_error_timestamp_seconds')).toBeGreaterThan(0);
  });

  it.skipIf(!haveCommand('promtool', 'apt-get install -y prometheus'))(
    'passes promtool check metrics, store and HTTP connection metrics included',
    async () => {
      const text = await metrics();
      expect(text).toContain('coalmine_http_connections_refused_total{reason="max_per_client"} 0');
      expect(text).toContain('coalmine_store_dropped_total');
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(check.stdout + check.stderr).toBe('');
      expect(check.status).toBe(0);
    },
  );
});
