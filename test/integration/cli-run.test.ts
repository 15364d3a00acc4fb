import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../support/net.js';

const bin = join(import.meta.dirname, '../../bin/coalmine.js');

type LogLine = Record<string, unknown>;

/** Starts the built binary; its stdout and stderr are collected as they come. */
function start(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, COALMINE_API_TOKEN: '', COALMINE_LOG_FORMAT: '', COALMINE_LOG_LEVEL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const io = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (io.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (io.stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  /** Every complete stderr line, parsed: throws if one is not JSON. */
  const logs = (): LogLine[] =>
    io.stderr
      .split('\n')
      .slice(0, -1)
      .map((l) => JSON.parse(l) as LogLine);
  return { child, io, exited, logs };
}

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

  it('serves /metrics, honours CHECK_INTERVAL, logs JSON lines and stops cleanly on SIGTERM', async () => {
    const config = join(dir, 'agent.yaml');
    writeFileSync(
      config,
      `store: { url: "sqlite:${join(dir, 'run.db')}" }\ntargets:\n  - name: db\n    kind: tcp\n    target: "127.0.0.1:${(tcp.address() as AddressInfo).port}"\n`,
    );
    const port = await freePort();
    const run = start(['run', '--config', config, '--listen', `127.0.0.1:${port}`], { CHECK_INTERVAL: '1' });
    try {
      // With a 1 s interval, at least three runs land within a few seconds.
      const runs = await waitFor('three scheduled runs', async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const m = /coalmine_probes_total\{kind="tcp",target="db",result="success"\} (\d+)/.exec(text);
        return m && Number(m[1]) >= 3 ? Number(m[1]) : undefined;
      });
      expect(runs).toBeGreaterThanOrEqual(3);
    } finally {
      run.child.kill('SIGTERM');
    }
    expect(await run.exited).toBe(0);
    const logs = run.logs();
    const started = logs.find((l) => l.msg === 'agent started');
    expect(started).toMatchObject({
      level: 'info',
      component: 'agent',
      targets: 1,
      url: `http://127.0.0.1:${port}`,
      store: 'sqlite',
    });
    expect(logs.map((l) => l.msg)).toEqual(expect.arrayContaining(['agent stopping', 'agent stopped']));
    // One target a second: the small heap stays (src/core/heap.ts).
    expect(logs.filter((l) => String(l.msg).startsWith("V8's default heap sizes"))).toEqual([]);
    // The dashboard URL with its generated token is for people, on stdout; the log never has the token.
    const token = /^dashboard: http:\/\/127\.0\.0\.1:\d+\/\?token=(cm_\S{20,})$/m.exec(run.io.stdout)?.[1];
    expect(token).toBeDefined();
    expect(started!.dashboard).toBe(`http://127.0.0.1:${port}/?token=***`);
    expect(run.io.stderr).not.toContain(token);
  });

  it('keeps V8 its default heap sizes when the targets make more than 2000 probes a second', async () => {
    const config = join(dir, 'busy.yaml');
    const port = (tcp.address() as AddressInfo).port;
    const targets = Array.from(
      { length: 201 },
      (_, i) => `  - name: t${i}\n    kind: tcp\n    target: "127.0.0.1:${port}"\n`,
    );
    // 201 targets every 100 ms: 2,010 probes a second.
    writeFileSync(
      config,
      `store: { url: "sqlite:${join(dir, 'busy.db')}" }\ninterval: 100ms\ntargets:\n${targets.join('')}`,
    );
    const run = start(['run', '--config', config, '--listen', `127.0.0.1:${await freePort()}`]);
    try {
      await waitFor('agent started', async () =>
        run.io.stderr.includes('"agent started"') ? true : undefined,
      );
    } finally {
      run.child.kill('SIGTERM');
    }
    expect(await run.exited).toBe(0);
    expect(run.logs().find((l) => String(l.msg).startsWith("V8's default heap sizes"))).toMatchObject({
      level: 'info',
      msg: "V8's default heap sizes: the targets make more than 2000 probes a second",
      probesPerSecond: 2010,
      pingsPerSecond: 0,
    });
  });

  it('logs broker retries and failing targets as JSON without any password or token', async () => {
    const closed = await freePort();
    const password = 'hunter2-broker-secret';
    const probeToken = 'probe-token-secret';
    const apiToken = 'api-token-0123456789abcdef-secret';
    const config = join(dir, 'secrets.yaml');
    writeFileSync(
      config,
      [
        'store: false',
        'targets:',
        `  - { name: web, kind: http, target: "http://127.0.0.1:${closed}/health?token=${probeToken}", interval: 1s }`,
        'transports:',
        `  - { name: bus, url: "redis://app:${password}@127.0.0.1:${closed}" }`,
        'canaries:',
        '  - { name: c1, transport: bus }',
      ].join('\n'),
    );
    const port = await freePort();
    const run = start(['run', '--config', config, '--listen', `127.0.0.1:${port}`, '--log-format', 'json'], {
      COALMINE_API_TOKEN: apiToken,
    });
    try {
      await waitFor('two connect retries and the failing target', async () =>
        run.io.stderr.split('transport connect failed').length > 2 && run.io.stderr.includes('target down')
          ? true
          : undefined,
      );
      // The token in use, in a header and in a query string, and a wrong one.
      const base = `http://127.0.0.1:${port}/api/v1/status`;
      expect((await fetch(base, { headers: { authorization: `Bearer ${apiToken}` } })).status).toBe(200);
      expect((await fetch(`${base}?token=${apiToken}`)).status).toBe(200);
      expect((await fetch(base, { headers: { authorization: `Bearer ${apiToken}x` } })).status).toBe(401);
    } finally {
      run.child.kill('SIGTERM');
    }
    expect(await run.exited).toBe(0);
    for (const secret of [password, probeToken, apiToken]) {
      expect(run.io.stderr).not.toContain(secret);
      expect(run.io.stdout).not.toContain(secret);
    }
    const logs = run.logs();
    for (const l of logs) {
      expect(Object.keys(l).slice(0, 3)).toEqual(['time', 'level', 'msg']);
      expect(new Date(l.time as string).toISOString()).toBe(l.time);
    }
    const retries = logs.filter((l) => l.msg === 'transport connect failed; retrying');
    expect(retries.length).toBeGreaterThanOrEqual(2);
    expect(retries[0]).toMatchObject({
      level: 'warn',
      component: 'transport',
      transportName: 'bus',
      transport: 'redis',
      url: `redis://app:***@127.0.0.1:${closed}`,
      attempt: 1,
      retryInMs: expect.any(Number),
      err: { name: 'TransportError', message: expect.any(String) },
    });
    expect(retries[1]).toMatchObject({ attempt: 2 });
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'target down',
        component: 'probe',
        target: 'web',
        kind: 'http',
        address: `http://127.0.0.1:${closed}/health?token=***`,
        err: expect.objectContaining({ code: 'refused' }),
      }),
    );
    // A configured token is not printed anywhere: the dashboard URL on stdout has none.
    expect(run.io.stdout).toBe(`dashboard: http://127.0.0.1:${port}/\n`);
  });

  it('exits 2 with the problems when the config is bad', async () => {
    const config = join(dir, 'bad.yaml');
    writeFileSync(config, 'targets:\n  - { name: x, kind: tcp, target: nowhere }\n');
    const run = start(['run', '--config', config]);
    expect(await run.exited).toBe(2);
    expect(run.io.stderr).toContain('bad.yaml:2:35: targets[0].target: expected host:port');
  });

  it('exits 2 naming the variable when COALMINE_LOG_LEVEL is wrong', async () => {
    const run = start(['run', '--config', join(dir, 'any.yaml')], { COALMINE_LOG_LEVEL: 'verbose' });
    expect(await run.exited).toBe(2);
    expect(run.io.stderr).toBe(
      'error: COALMINE_LOG_LEVEL: expected debug, info, warn or error (got "verbose")\n',
    );
  });
});
