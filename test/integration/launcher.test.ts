import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../support/net.js';

const launcher = join(import.meta.dirname, '../../bin/coalmine');
const version = (
  JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }
).version;

/** What the process the launcher became runs with, read from /proc (the launcher execs node). */
function procView(pid: number) {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
  return { argv, env };
}

describe('bin/coalmine, the launcher npm installs as the coalmine command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coalmine-launcher-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Starts `run` through the launcher with env, waits until it serves, and returns its /proc view. */
  async function runThrough(env: Record<string, string | undefined>) {
    const config = join(dir, 'agent.yaml');
    writeFileSync(config, `store: { url: "sqlite:${join(dir, 'agent.db')}" }\ntargets: []\n`);
    const port = await freePort();
    const child = spawn(launcher, ['run', '-c', config, '-l', `127.0.0.1:${port}`, '--log-level', 'error'], {
      env: { ...process.env, COALMINE_API_TOKEN: '', ...env },
      stdio: 'ignore',
    });
    try {
      await waitFor('the agent to answer /healthz', async () =>
        fetch(`http://127.0.0.1:${port}/healthz`).then(
          (r) => r.ok || undefined,
          () => undefined,
        ),
      );
      return procView(child.pid!);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  }

  it('runs the agent in one node process with one V8 worker thread and two malloc arenas', async () => {
    const { argv, env } = await runThrough({ MALLOC_ARENA_MAX: undefined, NODE_OPTIONS: '' });
    // exec: the PID we started is node itself, not a shell waiting on it.
    expect(argv[0]).toMatch(/node$/);
    expect(argv).toContain('--v8-pool-size=1');
    expect(argv.find((a) => a.endsWith('bin/coalmine.js'))).toBeDefined();
    expect(env).toContain('MALLOC_ARENA_MAX=2');
  });

  it("keeps a user's own MALLOC_ARENA_MAX and --v8-pool-size", async () => {
    const { argv, env } = await runThrough({ MALLOC_ARENA_MAX: '4', NODE_OPTIONS: '--v8-pool-size=2' });
    expect(env).toContain('MALLOC_ARENA_MAX=4');
    expect(argv).not.toContain('--v8-pool-size=1');
  });

  it('works through a symlink, as npm links it, and passes other commands to node untouched', () => {
    const link = join(dir, 'coalmine');
    symlinkSync(launcher, link);
    expect(execFileSync(link, ['--version'], { encoding: 'utf8' }).trim()).toBe(version);
    const help = execFileSync(link, ['config', '--help'], { encoding: 'utf8' });
    expect(help).toContain('Usage: coalmine config');
  });
});
