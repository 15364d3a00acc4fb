import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../core/clock.js';
import { PHASES } from '../core/types.js';
import { probes, probeKinds } from './registry.js';
import { runProbe } from './run.js';
import { VALUE_HELP } from './value-help.js';

describe('probe definitions', () => {
  it('give each value one meaning across kinds, and the sinks every one of them', () => {
    const seen = new Map<string, { kind: string; help: string }>();
    for (const kind of probeKinds) {
      for (const [name, help] of Object.entries(probes[kind].values)) {
        expect(name).toMatch(/^[a-z][a-z0-9_]*$/);
        expect(help.length).toBeGreaterThan(10);
        const before = seen.get(name);
        if (before) expect({ name, help }).toEqual({ name, help: before.help });
        seen.set(name, { kind, help });
        expect(VALUE_HELP[name]).toBe(help);
      }
    }
    expect(Object.keys(VALUE_HELP).sort()).toEqual([...seen.keys()].sort());
  });

  it('name known phases, in report order, and distinct compat prefixes', () => {
    for (const kind of probeKinds) {
      const phases = probes[kind].phases;
      expect(phases.length).toBeGreaterThan(0);
      const order = phases.map((p) => PHASES.indexOf(p));
      expect(order.every((i) => i >= 0)).toBe(true);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
    }
    const prefixes = probeKinds.map((k) => probes[k].compatPrefix).filter((p) => p !== undefined);
    expect(new Set(prefixes).size).toBe(prefixes.length);
  });
});

describe('a real run reports only what its definition declares', () => {
  let http: Server;
  let tcp: Server;
  const port = (s: Server) => (s.address() as AddressInfo).port;
  beforeAll(async () => {
    http = createHttpServer((_req, res) => res.end('ok')) as unknown as Server;
    tcp = createTcpServer((socket) => socket.end());
    await Promise.all(
      [http, tcp].map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))),
    );
  });
  afterAll(() => {
    http.close();
    tcp.close();
  });

  it.each([
    ['http', () => `http://127.0.0.1:${port(http)}/`],
    ['tcp', () => `127.0.0.1:${port(tcp)}`],
  ] as const)('%s', async (kind, target) => {
    const options = probes[kind].options.parse({}) as Record<string, unknown>;
    const r = await runProbe(kind, target(), options, { clock: systemClock, timeoutMs: 5000 });
    expect(r.ok).toBe(true);
    const def = probes[kind];
    const values = Object.keys(r.values ?? {});
    expect(values.length).toBeGreaterThan(0);
    for (const name of values) expect(def.values).toHaveProperty(name);
    for (const phase of Object.keys(r.phases ?? {})) expect(def.phases).toContain(phase);
  });
});
