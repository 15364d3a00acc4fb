import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type Io } from './main.js';

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l), isTty: false };
  const code = await main(['node', 'coalmine', ...args], io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

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

  it('config schema prints a JSON Schema naming every kind', async () => {
    const r = await cli('config', 'schema');
    const schema = JSON.parse(r.out) as Record<string, unknown>;
    expect(schema.$schema).toMatch(/json-schema/);
    for (const kind of ['http', 'tcp', 'dns', 'icmp']) expect(r.out).toContain(`"const": "${kind}"`);
  });
});
