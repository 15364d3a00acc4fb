import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const dist = join(import.meta.dirname, '../../dist');

/** Runs `body` in a fresh Node process guarded as the long-running commands are (the built code). */
function guarded(body: string) {
  const script = [
    `import { guardProcess } from ${JSON.stringify(pathToFileURL(join(dist, 'cli/signals.js')).href)};`,
    `import { createLogger } from ${JSON.stringify(pathToFileURL(join(dist, 'core/log.js')).href)};`,
    `guardProcess(createLogger({ format: 'json' }));`,
    body,
  ].join('\n');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  const logs = r.stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { status: r.status, stdout: r.stdout, logs };
}

describe('a guarded process (the built code)', () => {
  it('logs an unhandled rejection as a JSON error line and keeps running', () => {
    const r = guarded(
      `Promise.reject(new Error('lost postgres://app:pgpass@127.0.0.1/db'));
       setTimeout(() => console.log('still running'), 100);`,
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('still running\n');
    expect(r.logs).toEqual([
      expect.objectContaining({
        level: 'error',
        component: 'process',
        err: { name: 'Error', message: 'lost postgres://app:***@127.0.0.1/db' },
        stack: expect.stringContaining('lost postgres://app:***@127.0.0.1/db'),
      }),
    ]);
  });

  it('logs an uncaught exception as a JSON error line, then exits 1', () => {
    const r = guarded(
      `setTimeout(() => { throw new RangeError('state is corrupt'); }, 10);
       setTimeout(() => console.log('should not run'), 500);`,
    );
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.logs).toEqual([
      expect.objectContaining({
        level: 'error',
        msg: expect.stringContaining('uncaught exception'),
        err: { name: 'RangeError', message: 'state is corrupt' },
      }),
    ]);
  });
});
