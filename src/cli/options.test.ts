import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type Io } from './main.js';
import { kindOptions } from './options.js';

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l), isTty: false, errIsTty: false };
  const code = await main(['node', 'coalmine', ...args], io, {});
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** --help text with commander's wrapping undone, so a phrase can be matched whole. */
const help = async (...args: string[]) => (await cli(...args, '--help')).out.replace(/\s+/g, ' ');

describe('probe -o', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    // 204 with a body check that passes: the probe succeeds only if both 200 and 204 are valid.
    server = createServer((_req, res) => {
      res.statusCode = 204;
      res.end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => void server.close());

  it('adds to a list option when it is repeated, instead of keeping the last', async () => {
    const repeated = ['-o', 'validStatusCodes=204', '-o', 'validStatusCodes=200'];
    const r = await cli('probe', 'http', base, ...repeated, '--json');
    expect(r.code, r.err).toBe(0);
    expect(kindOptions('http', ['validStatusCodes=204', 'validStatusCodes=[200,201]'])).toMatchObject({
      validStatusCodes: [204, 200, 201],
    });
    expect(kindOptions('http', ['failIfHeaderMatchesRegexp={header: Server, regexp: x}'])).toMatchObject({
      failIfHeaderMatchesRegexp: [{ header: 'Server', regexp: 'x', allowMissing: false }],
    });
  });

  it('refuses a scalar option given twice, naming both', async () => {
    const r = await cli('probe', 'http', base, '-o', 'method=GET', '-o', 'method=HEAD');
    expect(r).toMatchObject({
      code: 2,
      err: 'error: -o method: given twice (-o method=GET and -o method=HEAD); it takes one value (only list options add up)',
    });
    expect(() => kindOptions('tcp', ['tls.serverName=a', 'tls.serverName=b'])).toThrow(
      /tls\.serverName: given twice/,
    );
    expect(() => kindOptions('tcp', ['__proto__.polluted=1'])).toThrow(/unknown option __proto__/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('duration flags', () => {
  it('--help shows their defaults as durations, not milliseconds', async () => {
    const probe = await help('probe');
    expect(probe).toMatch(
      /--timeout <duration> +timeout of each probe \(with a unit: 250ms, 10s, 1m30s\) \(default: 10s\)/,
    );
    expect(probe).toMatch(/--interval <duration>.*\(default: 1s\)/);
    expect(probe).not.toMatch(/default: 10000|default: 1000\b/);
    const pair = await help('pair');
    expect(pair).toMatch(/--duration <duration>.*\(default: 10s\)/);
    expect(pair).toMatch(/--loss-timeout <duration>.*\(default: 2s\)/);
    expect(await help('coalminer')).toMatch(/--loss-timeout <duration>.*\(default: 5s\)/);
    expect(await help('demo')).toMatch(/--interval <duration>.*\(default: 2s\)/);
    expect(await help('alerts', 'test')).toMatch(/--timeout <duration>.*\(default: 10s\)/);
    for (const c of ['probe', 'pair', 'canary', 'coalminer', 'demo']) {
      expect(await help(c), c).not.toMatch(/default: \d{4,}\)/);
    }
  });

  it('refuses a bare number, which would otherwise be seconds (-t 1000 waiting 17 minutes)', async () => {
    const start = Date.now();
    const r = await cli('probe', 'tcp', '127.0.0.1:1', '-t', '1000');
    expect(r).toMatchObject({ code: 2, err: 'error: --timeout: "1000" needs a unit, e.g. 1000ms or 1000s' });
    expect(Date.now() - start).toBeLessThan(1000);
    for (const args of [
      ['pair', 'redis://127.0.0.1:1', '-d', '3'],
      ['probe', 'tcp', '127.0.0.1:1', '-i', '2.5'],
      ['alerts', 'test', '--config', '/nonexistent.yaml', '--timeout', '10'],
    ]) {
      expect((await cli(...args)).err, args.join(' ')).toMatch(/needs a unit, e\.g\. [\d.]+ms or [\d.]+s$/);
    }
    const ms = await cli('probe', 'tcp', '127.0.0.1:1', '-t', '1000ms', '--json');
    expect(ms.err).toBe('');
    expect(JSON.parse(ms.out)).toMatchObject({ ok: false, error: { code: 'refused' } });
  });
});
