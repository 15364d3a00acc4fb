import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../support/net.js';

const bin = join(import.meta.dirname, '../../bin/coalmine.js');
const TOKEN = 'footprint-test-token-0123456789abcdef';

interface Loaded {
  cjs: string[];
  builtins: string[];
}

/**
 * What a small agent loads is what it holds for months (issue 10 item 19: 200 HTTP targets under
 * 80 MB RSS, bench/probes.mjs section memory). These are the loads that cost it megabytes before and
 * must stay away: the built binary, probing TCP with its store and API, is asked what it has loaded.
 */
describe('a small agent (the built binary) loads only what it uses', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coalmine-footprint-'));
  let tcp: Server;
  beforeAll(async () => {
    tcp = createServer((s) => s.end());
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  });
  afterAll(() => {
    tcp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('no separate fastify or OpenTelemetry modules, no HTTP/2, vm or worker threads', async () => {
    const out = join(dir, 'loaded.json');
    // Written into the agent with --import: on SIGUSR2 it writes the CommonJS modules it holds and the
    // Node built-ins it loaded.
    const hook = join(dir, 'hook.mjs');
    writeFileSync(
      hook,
      `import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
const require = createRequire(import.meta.url);
process.on('SIGUSR2', () => {
  writeFileSync(${JSON.stringify(out)}, JSON.stringify({
    cjs: Object.keys(require.cache),
    builtins: process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)),
  }));
});
`,
    );
    const config = join(dir, 'agent.yaml');
    writeFileSync(
      config,
      `interval: 1s\nstore: { url: "sqlite:${join(dir, 'agent.db')}" }\ntargets:\n  - name: db\n    kind: tcp\n    target: "127.0.0.1:${(tcp.address() as AddressInfo).port}"\n`,
    );
    const port = await freePort();
    const child = spawn(process.execPath, [bin, 'run', '--config', config, '--listen', `127.0.0.1:${port}`], {
      env: {
        ...process.env,
        NODE_OPTIONS: `--import ${hook}`,
        COALMINE_API_TOKEN: TOKEN,
        COALMINE_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      // Probing, serving the API and metrics: what a running agent has loaded by now is its steady state.
      await waitFor('two probe runs and an API answer', async () => {
        if (child.exitCode !== null) throw new Error(`the agent exited: ${stderr}`);
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const m = /coalmine_probes_total\{kind="tcp",target="db",result="success"\} (\d+)/.exec(text);
        const api = await fetch(`http://127.0.0.1:${port}/api/v1/targets`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        return m && Number(m[1]) >= 2 && api.status === 200 ? true : undefined;
      });
      child.kill('SIGUSR2');
      const loaded = await waitFor('the hook to answer', async () => {
        try {
          return JSON.parse(readFileSync(out, 'utf8')) as Loaded;
        } catch {
          return undefined;
        }
      });
      const packages = new Set(
        loaded.cjs
          .map((f) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f)?.[1])
          .filter((p) => p !== undefined),
      );
      // The bundle holds fastify and what it serves with (scripts/bundle.mjs); prom-client's
      // @opentelemetry/api (51 modules) loads only if exemplars were ever asked for.
      for (const p of ['fastify', 'avvio', 'find-my-way', 'semver', '@opentelemetry/api', 'nodemailer'])
        expect([...packages], `${p} loaded as its own modules`).not.toContain(p);
      expect(packages).toContain('better-sqlite3');
      for (const b of ['http2', 'vm', 'worker_threads'])
        expect(loaded.builtins, `node:${b} loaded`).not.toContain(b);
      expect(stderr).not.toMatch(/"level":"error"/);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
