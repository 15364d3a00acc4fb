import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { startServer, type AgentServer } from '../../src/api/server.js';
import { parseConfig } from '../../src/config/load.js';
import { selfSignedCert } from '../support/certs.js';

/** Targets that are down in every way we can make on loopback: none may crash the agent or outlive its timeout. */
describe('an agent probing broken targets', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coalmine-bad-'));
  const sockets = new Set<Socket>();
  let hung: Server, tlsBroken: Server, closedPort: number, silentDns: UdpSocket;
  let agent: Agent;
  let server: AgentServer;
  const port = (s: Server) => (s.address() as AddressInfo).port;

  beforeAll(async () => {
    hung = createServer((s) => void sockets.add(s));
    const cert = selfSignedCert(dir, 'wrong', { subject: '/CN=wrong.example', san: '', days: 1 });
    tlsBroken = createTlsServer({ key: cert.key, cert: cert.cert }, (s) => s.end());
    const closed = createServer();
    await Promise.all(
      [hung, tlsBroken, closed].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))),
    );
    closedPort = port(closed);
    await new Promise((r) => closed.close(r));
    silentDns = createSocket('udp4');
    await new Promise<void>((r) => silentDns.bind(0, '127.0.0.1', r));

    const config = parseConfig(
      [
        'interval: 10s',
        'timeout: 400ms',
        'targets:',
        `  - { name: refused-http, kind: http, target: "http://127.0.0.1:${closedPort}/" }`,
        `  - { name: hung-http, kind: http, target: "http://127.0.0.1:${port(hung)}/" }`,
        `  - { name: tls-broken, kind: http, target: "https://127.0.0.1:${port(tlsBroken)}/" }`,
        `  - { name: hung-tcp-expect, kind: tcp, target: "127.0.0.1:${port(hung)}", exchange: [{ expect: banner }] }`,
        `  - { name: refused-tcp, kind: tcp, target: "127.0.0.1:${closedPort}" }`,
        `  - { name: silent-dns, kind: dns, target: example.internal, server: "127.0.0.1:${silentDns.address().port}" }`,
        `  - { name: refused-dns, kind: dns, target: example.internal, server: "127.0.0.1:${closedPort}" }`,
      ].join('\n'),
    );
    agent = new Agent(config);
    server = await startServer(agent, '127.0.0.1', 0);
  });

  afterAll(async () => {
    await server.close();
    await agent.close();
    for (const s of sockets) s.destroy();
    hung.close();
    tlsBroken.close();
    silentDns.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports each failure with its reason, within the timeout, and keeps serving', async () => {
    const started = Date.now();
    const res = await fetch(`${server.url}/check`, { method: 'POST' });
    const elapsed = Date.now() - started;
    const { results } = (await res.json()) as {
      results: { name: string; ok: boolean; durationSeconds: number; error: { code: string } }[];
    };
    const codes = Object.fromEntries(results.map((r) => [r.name, r.error?.code]));
    expect(codes).toEqual({
      'refused-http': 'refused',
      'hung-http': 'timeout',
      'tls-broken': 'tls',
      'hung-tcp-expect': 'timeout',
      'refused-tcp': 'refused',
      'silent-dns': 'timeout',
      'refused-dns': 'refused',
    });
    for (const r of results) {
      expect(r.ok).toBe(false);
      expect(r.durationSeconds).toBeLessThan(0.4 + 0.1);
    }
    // All ran at once: the whole check takes about one timeout, not the sum.
    expect(elapsed).toBeLessThan(1500);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    for (const name of Object.keys(codes))
      expect(metrics).toMatch(new RegExp(`probe_success\\{target="${name}",kind="\\w+"\\} 0`));
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});
