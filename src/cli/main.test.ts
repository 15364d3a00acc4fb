import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type Io } from './main.js';

async function cliWith(
  opts: { env?: Record<string, string>; errIsTty?: boolean },
  ...args: string[]
): Promise<{ code: number; out: string; err: string; errLines: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    isTty: false,
    errIsTty: opts.errIsTty ?? false,
  };
  const code = await main(['node', 'coalmine', ...args], io, opts.env ?? {});
  return { code, out: out.join('\n'), err: err.join('\n'), errLines: err };
}

const cli = (...args: string[]) => cliWith({}, ...args);

describe('coalmine CLI', () => {
  let tcp: Server;
  let port: number;
  const dir = mkdtempSync(join(tmpdir(), 'coalmine-cli-'));
  beforeAll(async () => {
    tcp = createServer((s) => s.end());
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    port = (tcp.address() as AddressInfo).port;
  });
  afterAll(() => void tcp.close());

  it('prints --version and --help with exit 0', async () => {
    expect(await cli('--version')).toMatchObject({ code: 0, out: '0.1.0' });
    const help = await cli('--help');
    expect(help.code).toBe(0);
    for (const c of ['probe', 'run', 'config', 'target', 'demo']) expect(help.out).toContain(c);
    const probeHelp = await cli('probe', '--help');
    expect(probeHelp.out).toContain('-o validStatusCodes');
    expect((await cli('config', 'check', '--help')).code).toBe(0);
  });

  it('probe --json prints one object per probe with the documented fields', async () => {
    const r = await cli('probe', 'tcp', `127.0.0.1:${port}`, '--count', '3', '--interval', '10ms', '--json');
    expect(r.code).toBe(0);
    const lines = r.out.split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(3);
    for (const l of lines) {
      expect(l).toMatchObject({ kind: 'tcp', target: `127.0.0.1:${port}`, ok: true });
      expect(l.durationSeconds).toBeGreaterThan(0);
      expect((l.phases as Record<string, number>).connect).toBeGreaterThan(0);
    }
  });

  it('probe exits 1 with the error when the target fails, and prints a table', async () => {
    const r = await cli('probe', 'tcp', '127.0.0.1:1');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^KIND\s+TARGET\s+RESULT/);
    expect(r.out).toMatch(/FAIL .*refused/);
  });

  it('rejects bad probe usage with exit 2 and a reason', async () => {
    expect(await cli('probe', 'smtp', 'x')).toMatchObject({
      code: 2,
      err: expect.stringContaining('unknown probe kind "smtp"'),
    });
    expect(await cli('probe', 'tcp', 'nohost')).toMatchObject({
      code: 2,
      err: expect.stringContaining('host:port'),
    });
    expect(await cli('probe', 'tcp', `127.0.0.1:${port}`, '--count', '0')).toMatchObject({ code: 2 });
    expect(await cli('probe', 'tcp', `127.0.0.1:${port}`, '-o', 'bogus=1')).toMatchObject({
      code: 2,
      err: expect.stringContaining('unknown option bogus'),
    });
  });

  it('config check: exit 0 for a valid file, exit 2 listing every problem', async () => {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, `targets:\n  - { name: a, kind: tcp, target: "127.0.0.1:${port}" }\n`);
    expect(await cli('config', 'check', good)).toMatchObject({
      code: 0,
      out: expect.stringContaining('valid: 1 target'),
    });
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'interval: never\ntargets:\n  - { name: a, kind: tcp, target: nope }\n');
    const r = await cli('config', 'check', bad);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${bad}:1:11: interval: expected a duration`);
    expect(r.err).toContain(`${bad}:3:35: targets[0].target: expected host:port`);
    expect(await cli('config', 'check', join(dir, 'missing.yaml'))).toMatchObject({
      code: 2,
      err: expect.stringContaining('no such file'),
    });
  });

  it('alerts export exits 2 naming the file when it cannot be read', async () => {
    const r = await cli('alerts', 'export', '--config', join(dir, 'absent.yaml'));
    expect(r.code).toBe(2);
    expect(r.err).toContain('absent.yaml');
  });

  it("alerts export warns of a target's latency rule that per-kind histograms cannot serve", async () => {
    const rules = [
      'alerting:',
      '  rules:',
      '    - { name: slow, target: web, condition: { latency: { percentile: 95, above: 0.5 } } }',
      '    - { name: down, target: web, condition: { probeFailing: {} } }',
    ];
    writeFileSync(join(dir, 'lean.yaml'), rules.join('\n'));
    const lean = await cli('alerts', 'export', '--config', join(dir, 'lean.yaml'));
    expect(lean.code).toBe(0);
    expect(lean.out).toContain('coalmine_probe_duration_seconds_bucket{target="web"}');
    expect(lean.errLines).toEqual([
      `${join(dir, 'lean.yaml')}: warning: rule slow reads coalmine_probe_duration_seconds_bucket{target="web"}, which the agent exports only with metrics: { targetBuckets: true }`,
    ]);
    writeFileSync(join(dir, 'buckets.yaml'), ['metrics: { targetBuckets: true }', ...rules].join('\n'));
    const buckets = await cli('alerts', 'export', '--config', join(dir, 'buckets.yaml'));
    expect(buckets).toMatchObject({ code: 0, errLines: [] });
  });

  it('config schema prints a JSON Schema naming every kind', async () => {
    const r = await cli('config', 'schema');
    const schema = JSON.parse(r.out) as Record<string, unknown>;
    expect(schema.$schema).toMatch(/json-schema/);
    for (const kind of ['http', 'tcp', 'dns', 'icmp']) expect(r.out).toContain(`"const": "${kind}"`);
  });

  describe('logs of long-running commands', () => {
    // A canary on the in-process bus that stops by itself: the quickest long-running command.
    const canary = (...extra: string[]) => [
      'canary',
      '-t',
      'memory://cli-logs',
      '-n',
      'c1',
      '-d',
      '100ms',
      ...extra,
    ];

    it('are JSON lines with stable fields on stderr, results on stdout', async () => {
      const r = await cli(...canary());
      expect(r.code).toBe(0);
      const lines = r.errLines.map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toContainEqual(
        expect.objectContaining({
          level: 'info',
          msg: 'transport connected',
          component: 'transport',
          transport: 'memory',
          canary: 'c1',
          url: 'memory://cli-logs',
        }),
      );
      expect(lines).toContainEqual(
        expect.objectContaining({ msg: 'waiting for coalminers', component: 'canary', canary: 'c1' }),
      );
      for (const l of lines) expect(Object.keys(l).slice(0, 3)).toEqual(['time', 'level', 'msg']);
      expect(JSON.parse(r.out)).toMatchObject({ canary: 'c1', coalminers: {} });
    });

    it('honour --log-level and --log-format, the flag over the environment', async () => {
      expect((await cli(...canary('--log-level', 'warn'))).errLines).toEqual([]);
      const quiet = await cliWith({ env: { COALMINE_LOG_LEVEL: 'error' } }, ...canary());
      expect(quiet.errLines).toEqual([]);
      const loud = await cliWith({ env: { COALMINE_LOG_LEVEL: 'error' } }, ...canary('--log-level', 'info'));
      expect(loud.errLines.length).toBeGreaterThan(0);

      const pretty = await cliWith(
        { env: { COALMINE_LOG_FORMAT: 'json' } },
        ...canary('--log-format', 'pretty'),
      );
      expect(pretty.err).toMatch(/INFO .*\[transport\] transport connected .*url=memory:\/\/cli-logs/);
      expect(() => JSON.parse(pretty.errLines[0]!)).toThrow();
      // auto: pretty when stderr is a terminal, JSON when it is not.
      expect((await cliWith({ errIsTty: true }, ...canary())).err).toContain(
        '[canary] waiting for coalminers',
      );
      const piped = await cliWith({ errIsTty: false }, ...canary());
      for (const l of piped.errLines) expect(() => JSON.parse(l)).not.toThrow();
    });

    it('end with one line and exit 2 when the store cannot be opened, its password hidden', async () => {
      const config = join(dir, 'store-down.yaml');
      writeFileSync(config, 'store: { url: "postgres://app:pgsecret@127.0.0.1:1/coalmine" }\n');
      const r = await cli('run', '--config', config, '--listen', '127.0.0.1:0');
      expect(r.code).toBe(2);
      expect(r.errLines).toEqual([
        'error: store postgres://app:***@127.0.0.1:1/coalmine: cannot connect to PostgreSQL at 127.0.0.1:1 (connection refused: is it running?): start it there, fix store.url, or use sqlite:PATH',
      ]);
      expect(r.err).not.toContain('pgsecret');
    });

    it('reject bad values with exit 2, naming the flag or the variable', async () => {
      expect(await cli(...canary('--log-level', 'loud'))).toMatchObject({
        code: 2,
        err: 'error: --log-level: expected debug, info, warn or error (got "loud")',
      });
      expect(await cli(...canary('--log-format', 'xml'))).toMatchObject({
        code: 2,
        err: 'error: --log-format: expected auto, json or pretty (got "xml")',
      });
      expect(await cliWith({ env: { COALMINE_LOG_FORMAT: 'logfmt' } }, ...canary())).toMatchObject({
        code: 2,
        err: 'error: COALMINE_LOG_FORMAT: expected auto, json or pretty (got "logfmt")',
      });
      for (const c of ['run', 'demo', 'pair', 'canary', 'coalminer', 'relay']) {
        const help = await cli(c, '--help');
        expect(help.out).toContain('--log-format <format>');
        expect(help.out).toContain('COALMINE_LOG_LEVEL');
      }
    });
  });
});
