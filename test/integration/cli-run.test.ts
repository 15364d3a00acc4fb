import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../support/net.js';

const bin = join(import.meta.dirname, '../../bin/coalmine.js');

/** The built `coalmine` binary, as a user runs it (npm test builds it first). */
describe('coalmine run (the built binary)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coalmine-run-'));
  let tcp: Server;
  beforeAll(async () => {
    tcp = createServer((s) => s.end());
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  });
  afterAll(() => {
    tcp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves /metrics, honours CHECK_INTERVAL, and stops cleanly on SIGTERM', async () => {
    const config = join(dir, 'agent.yaml');
    writeFileSync(
      config,
      `store: { url: "sqlite:${join(dir, 'run.db')}" }\ntargets:\n  - name: db\n    kind: tcp\n    target: "127.0.0.1:${(tcp.address() as AddressInfo).port}"\n`,
    );
    const port = await freePort();
    const child = spawn(process.execPath, [bin, 'run', '--config', config, '--listen', `127.0.0.1:${port}`], {
      env: { ...process.env, CHECK_INTERVAL: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      // With a 1 s interval, at least three runs land within a few seconds.
      const runs = await waitFor('three scheduled runs', async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const m = /coalmine_probes_total\{kind="tcp",target="db",result="success"\} (\d+)/.exec(text);
        return m && Number(m[1]) >= 3 ? Number(m[1]) : undefined;
      });
      expect(runs).toBeGreaterThanOrEqual(3);
      expect(stderr).toContain(`metrics at http://127.0.0.1:${port}/metrics`);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).toContain('stopping');
  });

  it('exits 2 with the problems when the config is bad', async () => {
    const config = join(dir, 'bad.yaml');
    writeFileSync(config, 'targets:\n  - { name: x, kind: tcp, target: nowhere }\n');
    const child = spawn(process.execPath, [bin, 'run', '--config', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).toBe(2);
    expect(stderr).toContain('bad.yaml:2:35: targets[0].target: expected host:port');
  });
});
