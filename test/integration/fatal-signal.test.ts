// A signal JavaScript cannot handle (SIGBUS from SQLite's memory-mapped -shm truncated under it, issue 9)
// used to kill the agent with no log line. These child processes die of real fatal signals with the
// native handler installed (the built code: dist/ and build/Release), and must leave exactly one JSON
// log line and still die of their signal.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FATAL_SIGNAL_HINTS, FATAL_SIGNAL_MSG, type FatalSignal } from '../../src/cli/fatal-signals.js';
import { ADDON_FILE } from '../../src/probes/icmp/native.js';

const root = join(import.meta.dirname, '../..');
const dist = join(root, 'dist');
const fatalSignalsJs = join(dist, 'cli/fatal-signals.js');

/** The native module and dist/ are built (npm run build:native, npm run build); CI fails without them. */
function built(): boolean {
  const missing = [join(root, ADDON_FILE), fatalSignalsJs].filter((p) => !existsSync(p));
  if (missing.length === 0) return true;
  const line = `${missing.join(' and ')} missing: run npm run build:native && npm run build`;
  if (process.env.CI) throw new Error(`CI: ${line}`);
  console.warn(`skipping: ${line}`);
  return false;
}

const dir = mkdtempSync(join(tmpdir(), 'coalmine-fatal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * `node args...` in `dir` (where a core file would land) without core dumps: a shell sets the limit,
 * then becomes node, so the exit signal is node's own.
 */
const NO_CORE = ['-c', 'ulimit -c 0 && exec "$0" "$@"', process.execPath];

/** Runs `body` in a fresh Node process that installed the fatal-signal log first. */
function child(body: string) {
  const script = [
    `import { installFatalSignalLog } from ${JSON.stringify(pathToFileURL(fatalSignalsJs).href)};`,
    `if (!installFatalSignalLog()) throw new Error('not installed');`,
    body,
  ].join('\n');
  const before = Date.now();
  const r = spawnSync('sh', [...NO_CORE, '--input-type=module', '-e', script], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { ...r, before, after: Date.now() };
}

/** Its one line on stderr, checked against the log format. */
function fatalLine(r: { stderr: string; before: number; after: number }, signal: FatalSignal) {
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  const line = JSON.parse(lines[0]!) as Record<string, unknown>;
  expect(line).toEqual({
    time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    level: 'error',
    msg: FATAL_SIGNAL_MSG,
    component: 'process',
    signal,
    hint: FATAL_SIGNAL_HINTS[signal],
  });
  // The handler's own date arithmetic gives the time of the crash.
  const time = Date.parse(line.time as string);
  expect(time).toBeGreaterThanOrEqual(r.before);
  expect(time).toBeLessThanOrEqual(r.after);
}

const betterSqlite3 = pathToFileURL(createRequire(import.meta.url).resolve('better-sqlite3')).href;

/** (module (memory 1) (func (export "load") (param i32) (result i32) local.get 0 i32.load)) */
const WASM_LOAD = [
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x03, 0x02,
  0x01, 0x00, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x08, 0x01, 0x04, 0x6c, 0x6f, 0x61, 0x64, 0x00, 0x00, 0x0a,
  0x09, 0x01, 0x07, 0x00, 0x20, 0x00, 0x28, 0x02, 0x00, 0x0b,
];

describe.runIf(process.platform === 'linux' && built())('a fatal signal with the handler installed', () => {
  it('SIGBUS from SQLite touching its -shm after it was truncated: one log line, and death by SIGBUS', () => {
    // better-sqlite3 without the store's ShmGuard, which would have restored the file first.
    const r = child(`
      import { truncateSync } from 'node:fs';
      const { default: Database } = await import(${JSON.stringify(betterSqlite3)});
      const db = new Database('store.sqlite');
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE t (x)');
      db.prepare('INSERT INTO t VALUES (1)').run();
      truncateSync('store.sqlite-shm', 0);
      db.prepare('INSERT INTO t VALUES (2)').run();
      console.log('survived');
    `);
    expect(r.stdout).toBe('');
    expect({ status: r.status, signal: r.signal }).toEqual({ status: null, signal: 'SIGBUS' });
    fatalLine(r, 'SIGBUS');
  });

  it.each(['SIGBUS', 'SIGILL', 'SIGFPE'] as const)('%s sent to the process: the same', (signal) => {
    const r = child(
      `process.kill(process.pid, '${signal}'); setTimeout(() => console.log('survived'), 2000);`,
    );
    expect(r.stdout).toBe('');
    expect({ status: r.status, signal: r.signal }).toEqual({ status: null, signal });
    fatalLine(r, signal);
  });

  it('leaves SIGSEGV to V8 first: WebAssembly out-of-bounds traps still throw; a real SIGSEGV is logged', () => {
    // On x86-64 and arm64 Linux, V8 leaves out bounds checks and lets the access fault; Node's SIGSEGV
    // handler turns the fault into a RuntimeError. Ours must pass it on, every time, and stay quiet.
    const r = child(`
      const wasm = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(${JSON.stringify(WASM_LOAD)})));
      for (let i = 0; i < 3; i++) {
        try { wasm.exports.load(0x7ffffff0); } catch (err) { console.log(err.constructor.name, err.message); }
      }
      console.log('in bounds', wasm.exports.load(0));
      process.kill(process.pid, 'SIGSEGV');
      setTimeout(() => console.log('survived'), 2000);
    `);
    expect(r.stdout).toBe(`${'RuntimeError memory access out of bounds\n'.repeat(3)}in bounds 0\n`);
    expect({ status: r.status, signal: r.signal }).toEqual({ status: null, signal: 'SIGSEGV' });
    fatalLine(r, 'SIGSEGV');
  });

  it('coalmine demo killed by SIGBUS logs it as its last line and dies of it', async () => {
    const demo = spawn(
      'sh',
      [...NO_CORE, join(root, 'bin/coalmine.js'), 'demo', '--listen', '127.0.0.1:0', '--log-format', 'json'],
      { cwd: dir, env: { ...process.env, TMPDIR: dir }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    const started = new Promise<void>((resolve) =>
      demo.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('"msg":"demo started"')) resolve();
      }),
    );
    const exited = new Promise<NodeJS.Signals | null>((resolve) => demo.once('exit', (_, s) => resolve(s)));
    try {
      await Promise.race([started, exited]);
      demo.kill('SIGBUS');
      expect(await exited).toBe('SIGBUS');
    } finally {
      if (demo.exitCode === null && demo.signalCode === null) demo.kill('SIGKILL');
    }
    const lines = stderr
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l.signal !== undefined)).toHaveLength(1);
    expect(lines.at(-1)).toMatchObject({ level: 'error', component: 'process', signal: 'SIGBUS' });
  });
});
