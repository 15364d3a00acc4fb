import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../core/clock.js';
import { runProbe } from '../run.js';
import tcp from './index.js';
import { selfSignedCert } from '../../../test/support/certs.js';

describe('tcp probe over TLS 1.3', () => {
  let server: Server;
  let port: number;
  let completed = 0;
  const sockets = new Set<TLSSocket>();

  beforeAll(async () => {
    const cert = selfSignedCert(mkdtempSync(join(tmpdir(), 'coalmine-tls13-')), 'server');
    // 'secureConnection' fires only once the server has read the client's Finished.
    server = createServer({ key: cert.key, cert: cert.cert, minVersion: 'TLSv1.3' }, (s) => {
      completed++;
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    });
    server.on('tlsClientError', () => {});
    port = await new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
    );
  });
  afterAll(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });

  it('completes the handshake the server sees: 3 of 3 probes', async () => {
    const opts = tcp.options.parse({ tls: { insecureSkipVerify: true } }) as Record<string, unknown>;
    for (let i = 0; i < 3; i++) {
      const r = await runProbe('tcp', `127.0.0.1:${port}`, opts, { clock: systemClock, timeoutMs: 2000 });
      expect(r.ok).toBe(true);
    }
    // The server reads the Finished after the probe returned; wait for it (bounded by the test timeout).
    await expect.poll(() => completed, { timeout: 2000, interval: 10 }).toBe(3);
  });
});
