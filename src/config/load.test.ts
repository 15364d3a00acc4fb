import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { loadTransportUrlChecker } from '../transports/registry.js';
import { parseConfig } from './load.js';

const dir = join(import.meta.dirname, 'testdata');

// As loadConfigFile does: every transport URL's options are checked too.
let checkTransportUrl: (url: string) => string[];
beforeAll(async () => {
  checkTransportUrl = await loadTransportUrlChecker();
});

function problemsOf(text: string, file: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, file, env, checkTransportUrl);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error(`${file} was accepted`);
}

describe('config testdata', () => {
  const files = readdirSync(dir).filter((f) => f.startsWith('invalid-'));
  it('has invalid examples', () => expect(files.length).toBeGreaterThan(10));
  for (const file of files) {
    it(`${file} gives its expected messages`, () => {
      const text = readFileSync(join(dir, file), 'utf8');
      const expected = [...text.matchAll(/^# expect: (.*)$/gm)].map((m) => m[1]!);
      expect(expected.length).toBeGreaterThan(0);
      const problems = problemsOf(text, file);
      for (const e of expected)
        expect(
          problems.some((p) => p.startsWith(e)),
          `${e}\n  not in\n${problems.join('\n')}`,
        ).toBe(true);
    });
  }

  it('accepts valid.yaml with defaults applied', () => {
    const cfg = parseConfig(readFileSync(join(dir, 'valid.yaml'), 'utf8'), 'valid.yaml');
    expect(cfg.intervalMs).toBe(30_000);
    expect(cfg.listen).toEqual({ host: '127.0.0.1', port: 9777 });
    expect(cfg.metrics.buckets).toHaveLength(12);
    expect(cfg.metrics.buckets[0]).toBe(0.0005);
    const byName = Object.fromEntries(cfg.targets.map((t) => [t.name, t]));
    expect(byName.web).toMatchObject({ kind: 'http', intervalMs: 30_000, timeoutMs: 5000 });
    expect(byName.ssh).toMatchObject({ intervalMs: 10_000, timeoutMs: 2000 });
    // The default timeout is kept below a short interval.
    expect(byName.gateway).toMatchObject({ intervalMs: 60_000, timeoutMs: 5000 });
  });
});

describe('defaults and environment', () => {
  it('defaults to a 15 s interval and a loopback listener', () => {
    const cfg = parseConfig('targets: [{name: a, kind: tcp, target: "127.0.0.1:1"}]');
    expect(cfg.intervalMs).toBe(15_000);
    expect(cfg.targets[0]!.timeoutMs).toBe(10_000);
    expect(cfg.listen.host).toBe('127.0.0.1');
  });

  it('keeps the default timeout below a short interval', () => {
    const cfg = parseConfig('interval: 2s\ntargets: [{name: a, kind: tcp, target: "127.0.0.1:1"}]');
    expect(cfg.targets[0]!.timeoutMs).toBe(1800);
  });

  it('takes CHECK_INTERVAL in seconds, as seed 001 did, and COALMINE_CHECK_INTERVAL before it', () => {
    expect(parseConfig('interval: 1m', 'c', { CHECK_INTERVAL: '20' }).intervalMs).toBe(20_000);
    expect(parseConfig('', 'c', { CHECK_INTERVAL: '20', COALMINE_CHECK_INTERVAL: '5s' }).intervalMs).toBe(
      5000,
    );
  });

  it('rejects a bad CHECK_INTERVAL by name', () => {
    expect(problemsOf('', 'c', { CHECK_INTERVAL: 'often' })).toEqual([
      'environment variable CHECK_INTERVAL: expected a duration like 15s or a number of seconds (got "often")',
    ]);
  });

  it('accepts an empty file', () => {
    expect(parseConfig('').targets).toEqual([]);
  });
});
