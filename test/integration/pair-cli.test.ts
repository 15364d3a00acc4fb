import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main, type Io } from '../../src/cli/main.js';
import { startRelay } from '../../src/transports/websocket/relay.js';
import { REDIS, redisReachable } from '../support/services.js';

async function cli(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l), isTty: false };
  const code = await main(['node', 'coalmine', ...args], io, {});
  return { code, out: out.join('\n'), err: err.join('\n'), errLines: err };
}

describe('coalmine pair', () => {
  it('checks a path end to end through the embedded relay and prints a JSON summary', async () => {
    const relay = await startRelay({ host: '127.0.0.1', port: 0 });
    try {
      const r = await cli(
        'pair',
        relay.url,
        '--rate',
        '200',
        '--duration',
        '2s',
        '--loss-timeout',
        '500ms',
        '--json',
      );
      expect(r.err).not.toMatch(/unhandled/);
      expect(r.code).toBe(0);
      // Progress goes to stderr as JSON log lines naming who said what; the result alone is on stdout.
      const logs = r.errLines.map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(logs).toContainEqual(
        expect.objectContaining({
          level: 'info',
          msg: 'registered with canary',
          component: 'coalminer',
          coalminer: 'pair-coalminer',
          canary: 'pair-canary',
          transport: 'websocket',
        }),
      );
      expect(logs).toContainEqual(
        expect.objectContaining({
          msg: 'coalminer registered',
          component: 'canary',
          coalminer: 'pair-coalminer',
        }),
      );
      expect(logs).toContainEqual(expect.objectContaining({ msg: 'pinging', rate: 200, durationMs: 2000 }));
      const s = JSON.parse(r.out) as Record<
        'sent' | 'received' | 'lost' | 'duplicated' | 'inFlight' | 'sendFailed',
        number
      > & {
        latency: Record<string, number>;
      };
      expect(s.sent).toBeGreaterThanOrEqual(350);
      expect(s.received).toBe(s.sent);
      expect(s.lost + s.duplicated + s.inFlight + s.sendFailed).toBe(0);
      expect(s.latency.p50).toBeGreaterThan(0);
      expect(s.latency.p99).toBeLessThan(0.1);
    } finally {
      await relay.close();
    }
  });

  it('prints a readable summary over the memory transport', async () => {
    const r = await cli(
      'pair',
      'memory://cli',
      '--rate',
      '100',
      '--duration',
      '1s',
      '--loss-timeout',
      '200ms',
    );
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/sent \d+ {2}received \d+ {2}lost 0/);
    expect(r.out).toContain('latency from intended send  p50');
  });

  it('explains what is wrong with a bad URL or an unreachable broker', async () => {
    const bad = await cli('pair', 'smtp://mail:mailpass@127.0.0.1:25');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(
      /^error: unsupported transport URL "smtp:\/\/mail:\*\*\*@127.0.0.1:25": the scheme must be one of/,
    );
    const down = await cli('pair', 'ws://127.0.0.1:1');
    expect(down.code).toBe(2);
    expect(down.err).toMatch(/^error: cannot connect to ws:\/\/127.0.0.1:1/);
  });

  // Nothing listens on port 1: a command that tried to connect would say "cannot connect" instead.
  it.each([
    ['pair', 'kafka://app:secret@127.0.0.1:1?sasl=scram&acks=2', []],
    ['canary', '', ['--transport', 'kafka://app:secret@127.0.0.1:1?sasl=scram&acks=2', '--name', 'c1']],
    [
      'coalminer',
      '',
      ['--transport', 'kafka://app:secret@127.0.0.1:1?sasl=scram&acks=2', '--name', 'm1', '--register', 'c1'],
    ],
  ])('%s lists every bad URL option before connecting, and exits 2', async (command, url, rest) => {
    const r = await cli(command, ...(url ? [url] : []), ...rest);
    expect(r.code).toBe(2);
    expect(r.err).toContain('kafka://app:***@127.0.0.1:1?sasl=scram&acks=2: 2 problems:');
    expect(r.err).toContain('acks= must be one of all, -1, 1, 0, got "2"');
    expect(r.err).toContain('sasl= must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got "scram"');
    expect(r.err).not.toContain('secret');
    expect(r.err).not.toMatch(/cannot connect|\n\s+at /);
  });
});

/** The built binary, as a user runs it: its exit code, stdout and stderr. */
function run(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [join(import.meta.dirname, '../../bin/coalmine.js'), ...args], {
    env: { ...process.env, COALMINE_LOG_FORMAT: '', COALMINE_LOG_LEVEL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((r) => child.once('exit', (code) => r({ code, out, err })));
}

describe('coalmine pair (the built binary) against Redis', async () => {
  const up = await redisReachable();
  const url = `redis://${REDIS.host}:${REDIS.port}`;
  type Summary = Record<'due' | 'attempted' | 'behindSchedule' | 'sent' | 'sendFailed', number> & {
    rateReached: boolean;
  };

  it.skipIf(!up)(
    'says when the canary could not keep the asked rate, and fails',
    async () => {
      // The most a canary accepts (MAX_RATE): since Redis pings go in batches (publish-batch.ts) a canary
      // keeps 150,000/s and more here, so only this is sure to be too fast for it.
      const text = await run('pair', url, '--rate', '1000000', '--duration', '1s', '--loss-timeout', '1s');
      expect(text.code).toBe(1);
      const m = /canary behind schedule: (\d+) pings, ([\d.]+) s/.exec(text.out);
      expect(m, text.out).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThan(0);
      expect(text.out).toMatch(/rate not reached: attempted \d+\/s of the 1000000\/s asked/);
      expect(text.out).toMatch(/latency from intended send counts the \d+ pings never sent/);

      const json = await run(
        'pair',
        url,
        '--rate',
        '1000000',
        '--duration',
        '1s',
        '--loss-timeout',
        '1s',
        '--json',
      );
      expect(json.code).toBe(1);
      const s = JSON.parse(json.out) as Summary;
      expect(s.behindSchedule).toBeGreaterThan(0);
      expect(s.due).toBe(s.attempted + s.behindSchedule);
      expect(s.attempted).toBeGreaterThanOrEqual(s.sent + s.sendFailed);
      expect(s.rateReached).toBe(false);
    },
    60_000,
  );

  it.skipIf(!up)(
    'is not behind schedule at a rate the canary keeps',
    async () => {
      const text = await run('pair', url, '--rate', '100', '--duration', '1s', '--loss-timeout', '500ms');
      expect(text.code, text.out + text.err).toBe(0);
      expect(text.out).toMatch(/canary behind schedule: 0 pings, 0\.000 s/);
      const json = await run(
        'pair',
        url,
        '--rate',
        '100',
        '--duration',
        '1s',
        '--loss-timeout',
        '500ms',
        '--json',
      );
      expect(json.code).toBe(0);
      const s = JSON.parse(json.out) as Summary;
      expect(s).toMatchObject({ behindSchedule: 0, rateReached: true });
      expect(s.due).toBe(s.attempted);
      expect(s.due).toBeGreaterThanOrEqual(95);
    },
    60_000,
  );
});
