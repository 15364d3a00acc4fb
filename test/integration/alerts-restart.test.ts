// A silence set through the API, the alert history and the rules' states outlive an agent restart: the
// agent (the same stack `coalmine run` starts) keeps them in its SQLite store and reads them back when it
// starts again.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type AgentStack } from '../../src/agent/stack.js';
import type { AlertHistoryEntry, AlertRuleStatus, Silence } from '../../src/api/v1/contract.js';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { freePort, waitFor } from '../support/net.js';

const TOKEN = 'restart-test-token-0123456789abcdef';

describe('alert history and silences across an agent restart', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coalmine-alerts-restart-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function start(targetPort: number): Promise<AgentStack> {
    const config = parseConfig(`
store: { url: "sqlite:${join(dir, 'agent.db')}" }
api: { tokens: [{ name: ops, token: ${TOKEN}, scopes: [read, write] }] }
targets:
  - { name: db, kind: tcp, target: "127.0.0.1:${targetPort}", interval: 200ms }
alerting:
  rules:
    - { name: db-down, target: db, condition: { probeFailing: {} }, evaluateEvery: 300ms, labels: { team: storage } }
`);
    config.listen = { host: '127.0.0.1', port: 0 };
    return startStack(config, { log: silentLogger });
  }

  const api = async <T>(stack: AgentStack, path: string, init: RequestInit = {}): Promise<T> => {
    const res = await fetch(`${stack.server.url}/api/v1${path}`, {
      ...init,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    });
    expect(res.ok, `${path}: ${res.status}`).toBe(true);
    return (await res.json()) as T;
  };

  it('restores the silence, the history and the firing state, and the silence still mutes the rule', async () => {
    const port = await freePort(); // refused: the rule fires
    const first = await start(port);
    let silence: Silence;
    try {
      silence = await api<Silence>(first, '/silences', {
        method: 'POST',
        body: JSON.stringify({ matchers: { team: 'storage' }, durationSeconds: 3600, comment: 'disk swap' }),
      });
      await waitFor('db-down firing', async () => {
        const { alerts } = await api<{ alerts: AlertRuleStatus[] }>(first, '/alerts');
        return alerts[0]?.state === 'firing' ? true : undefined;
      });
    } finally {
      await first.close();
    }

    const second = await start(port);
    try {
      const { silences } = await api<{ silences: Silence[] }>(second, '/silences');
      expect(silences).toEqual([
        expect.objectContaining({
          id: silence.id,
          comment: 'disk swap',
          active: true,
          endsAt: silence.endsAt,
        }),
      ]);
      const { history } = await api<{ history: AlertHistoryEntry[] }>(second, '/alerts/history?rule=db-down');
      expect(history.map((h) => `${h.from}->${h.to}`)).toContain('ok->firing');
      // The rule takes up where it was: firing since the first run (not firing a second time), and
      // still muted by the restored silence.
      const { alerts } = await api<{ alerts: AlertRuleStatus[] }>(second, '/alerts');
      expect(alerts[0]).toMatchObject({ state: 'firing', silencedBy: [silence.id] });
      expect(alerts[0]!.activeSince).toBe(history.find((h) => h.to === 'firing')!.at);
      await new Promise((r) => setTimeout(r, 1000)); // a few evaluations, the target still refusing
      const later = await api<{ history: AlertHistoryEntry[] }>(second, '/alerts/history?rule=db-down');
      expect(later.history.filter((h) => h.to === 'firing')).toHaveLength(1);
      expect((await api<{ alerts: AlertRuleStatus[] }>(second, '/alerts')).alerts[0]!.state).toBe('firing');
      // Expiring it through the API is stored too.
      const res = await fetch(`${second.server.url}/api/v1/silences/${silence.id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect(res.status).toBe(204);
    } finally {
      await second.close();
    }

    const third = await start(port);
    try {
      const { silences } = await api<{ silences: Silence[] }>(third, '/silences');
      expect(silences).toEqual([expect.objectContaining({ id: silence.id, active: false })]);
    } finally {
      await third.close();
    }
  }, 30_000);
});
