/**
 * Every command of the built binary exits promptly once its work is done or a signal asks it to: a `pair`
 * within 2 s of printing its summary, a long-running command within 2 s of SIGINT or SIGTERM. A timer,
 * socket or interval left referenced shows up here as a process that lingers (ws:// pair used to wait
 * out the WebSocket dead timer, ~35 s; the demo took ~37 s after Ctrl-C).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/net.js';
import { serviceReachable } from '../support/services.js';

const bin = join(import.meta.dirname, '../../bin/coalmine.js');
const EXIT_WITHIN_MS = 2000;

interface Running {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  /** Resolves with the exit code and when it happened (performance.now()). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Resolves at the first moment `pattern` has appeared on stdout or stderr. */
  sees(pattern: RegExp, timeoutMs?: number): Promise<number>;
}

function start(args: string[], env: NodeJS.ProcessEnv = {}): Running {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, COALMINE_LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const watchers = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of watchers) w();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of watchers) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  const sees = (pattern: RegExp, timeoutMs = 30_000) =>
    new Promise<number>((resolve, reject) => {
      const check = () => {
        if (!pattern.test(out) && !pattern.test(err)) return;
        watchers.delete(check);
        clearTimeout(timer);
        resolve(performance.now());
      };
      const timer = setTimeout(() => {
        watchers.delete(check);
        reject(
          new Error(`no ${pattern} within ${timeoutMs} ms; stdout: ${out}\nstderr: ${err.slice(-2000)}`),
        );
      }, timeoutMs);
      watchers.add(check);
      void exited.then(() => {
        check();
        if (watchers.has(check)) {
          watchers.delete(check);
          clearTimeout(timer);
          reject(new Error(`exited before ${pattern}; stdout: ${out}\nstderr: ${err.slice(-2000)}`));
        }
      });
      check();
    });
  return { child, out: () => out, err: () => err, exited, sees };
}

/** Waits for the exit, killing the process if it takes far longer than allowed so the file never hangs. */
async function exitOf(r: Running, fromMs: number) {
  const guard = setTimeout(() => r.child.kill('SIGKILL'), 10_000);
  const e = await r.exited;
  clearTimeout(guard);
  return { ...e, afterMs: e.at - fromMs };
}

const services = {
  redis: { port: 6379, url: 'redis://127.0.0.1:6379', start: 'redis-server --daemonize yes' },
  nats: { port: 4222, url: 'nats://127.0.0.1:4222', start: 'nats-server -js' },
  amqp: { port: 5672, url: 'amqp://guest:guest@127.0.0.1:5672', start: 'start RabbitMQ' },
  mqtt: { port: 1883, url: 'mqtt://127.0.0.1:1883', start: 'mosquitto -d' },
  postgres: {
    port: 5432,
    url: 'postgres://postgres@127.0.0.1:5432/test',
    start: 'start PostgreSQL (trust auth, db test)',
  },
};

let relay: Running;
let relayUrl: string;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coalmine-exits-'));
  const port = await freePort();
  relay = start(['relay', '--listen', `127.0.0.1:${port}`]);
  await relay.sees(/"relay listening"/);
  relayUrl = `ws://127.0.0.1:${port}`;
}, 40_000);

afterAll(async () => {
  relay?.child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('pair exits within 2 s of its summary', () => {
  const cases: [string, () => Promise<string | undefined>][] = [
    ['ws://', () => Promise.resolve(relayUrl)],
    ...Object.entries(services).map(
      ([name, s]) =>
        [
          `${name}://`,
          async () => ((await serviceReachable('127.0.0.1', s.port, s.start)) ? s.url : undefined),
        ] as [string, () => Promise<string | undefined>],
    ),
  ];
  it.concurrent.each(cases)('%s', async (_name, urlOf) => {
    const url = await urlOf();
    if (!url) return;
    const r = start(['pair', url, '--duration', '1s', '--rate', '20', '--json']);
    const summaryAt = await r.sees(/"sent":\d+/, 40_000);
    const e = await exitOf(r, summaryAt);
    expect(e.code, r.err().slice(-2000)).toBe(0);
    expect(e.afterMs).toBeLessThan(EXIT_WITHIN_MS);
  });
});

describe('long-running commands exit within 2 s of a signal', () => {
  const tinyConfig = async () => {
    const file = join(dir, `run-${Math.random().toString(36).slice(2)}.yaml`);
    const port = await freePort();
    await writeFile(
      file,
      [
        `listen: 127.0.0.1:${port}`,
        'interval: 1s',
        'targets:',
        `  - { name: self, kind: tcp, target: "127.0.0.1:${port}" }`,
        '',
      ].join('\n'),
    );
    return file;
  };
  const commands: [string, () => Promise<string[]>, RegExp][] = [
    ['demo', async () => ['demo', '--listen', `127.0.0.1:${await freePort()}`], /"demo started"/],
    ['run --config', async () => ['run', '--config', await tinyConfig()], /"agent started"/],
    ['relay', async () => ['relay', '--listen', `127.0.0.1:${await freePort()}`], /"relay listening"/],
    [
      'canary',
      () => Promise.resolve(['canary', '--transport', relayUrl, '--name', `exit-c-${process.pid}`]),
      /"waiting for coalminers"/,
    ],
    [
      'coalminer',
      () =>
        Promise.resolve([
          'coalminer',
          '--transport',
          relayUrl,
          '--name',
          `exit-m-${process.pid}`,
          '--register',
          `exit-c-${process.pid}`,
        ]),
      /"waiting for pings"/,
    ],
    ['target', async () => ['target', '--listen', `127.0.0.1:${await freePort()}`], /example service at/],
  ];
  const cases = commands.flatMap(([name, args, ready]) =>
    (['SIGINT', 'SIGTERM'] as const).map((sig) => [name, sig, args, ready] as const),
  );
  it.concurrent.each(cases)('%s on %s', async (_name, sig, argsOf, ready) => {
    const r = start(await argsOf());
    await r.sees(ready, 40_000);
    const sentAt = performance.now();
    r.child.kill(sig);
    const e = await exitOf(r, sentAt);
    expect(e.signal, r.err().slice(-2000)).toBeNull();
    expect(e.afterMs, r.err().slice(-2000)).toBeLessThan(EXIT_WITHIN_MS);
  });
});

describe('a failed start exits within 2 s of its error', () => {
  it('pair against a port that accepts TCP but never speaks NATS', async () => {
    // nats.js 2.29 never closes a socket that timed out waiting for INFO: the process used to hang here.
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const r = start(['pair', `nats://127.0.0.1:${port}`, '--duration', '1s']);
      const errorAt = await r.sees(/sent no NATS INFO within 5 s/, 20_000);
      const e = await exitOf(r, errorAt);
      expect(e.code, r.err().slice(-2000)).toBe(2);
      expect(e.afterMs).toBeLessThan(EXIT_WITHIN_MS);
    } finally {
      silent.close();
      // The server keeps its accepted sockets: close() alone would wait for the (now dead) client's.
      silent.unref();
    }
  }, 30_000);
});
