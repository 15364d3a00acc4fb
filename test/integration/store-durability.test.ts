import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { sqliteFixture } from './store-support.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = fileURLToPath(new URL('./store-ingest-child.mjs', import.meta.url));

describe('durability: SIGKILL during heavy ingest into SQLite', () => {
  const fx = sqliteFixture();
  beforeAll(async () => {
    // The child runs the compiled store. Type errors elsewhere do not stop tsc from emitting ours.
    await promisify(execFile)('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT }).catch(
      () => undefined,
    );
    if (!existsSync(`${ROOT}/dist/store/writer.js`))
      throw new Error('npm run build did not produce dist/store/writer.js');
  }, 180_000);
  afterAll(() => fx.cleanup());

  it('reopens with a passing integrity check and at most one flush interval of results missing', async () => {
    const spec = fx.freshSpec();
    const rate = 50_000;
    const flushMs = 200;
    const child = spawn(process.execPath, [CHILD, spec, String(rate), String(flushMs)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let last = { why: '', pushed: 0, written: 0 };
    let flushes = 0;
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let buf = '';
    const killed = new Promise<void>((resolve, reject) => {
      child.on('exit', () => resolve());
      child.on('error', reject);
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          last = JSON.parse(buf.slice(0, nl)) as typeof last;
          buf = buf.slice(nl + 1);
          if (last.why === 'flush') flushes++;
          // After a few flushes, kill it between two of them, while results are queued.
          if (flushes >= 5 && last.why === 'tick' && last.pushed > last.written + rate * 0.05)
            child.kill('SIGKILL');
        }
      });
    });
    await killed;
    expect(stderr).toBe('');
    expect(child.signalCode).toBe('SIGKILL');
    expect(last.written).toBeGreaterThan(0);

    const store = await fx.open(spec);
    expect(await store.integrityCheck()).toBe('ok');
    let rows = 0;
    let prev = -Infinity;
    for await (const r of store.exportProbes('durable', 0, Date.now() + 60_000)) {
      expect(r.time).toBeGreaterThanOrEqual(prev);
      prev = r.time;
      rows++;
    }
    // Everything the child saw flushed is there; what is missing is what was queued since the last flush.
    expect(rows).toBeGreaterThanOrEqual(last.written);
    const missing = last.pushed - rows;
    expect(missing).toBeLessThanOrEqual(rate * (flushMs / 1000) * 1.5);
    await store.close();
    // And the store takes writes again.
    const again = await openStore(spec);
    await again.writeProbes([
      {
        time: Date.now(),
        name: 'durable',
        kind: 'tcp',
        target: 'h:1',
        ok: true,
        durationSeconds: 0.001,
        phases: {},
      },
    ]);
    await again.close();
  });
});
