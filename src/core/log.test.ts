import { describe, expect, it } from 'vitest';
import { createLogger, LOG_LIMITS, redact, redactText, type LoggerOptions, type LogStream } from './log.js';

function capture(opts: LoggerOptions & { isTTY?: boolean } = {}) {
  const lines: string[] = [];
  const stream: LogStream = { write: (s: string) => lines.push(s), isTTY: opts.isTTY ?? false };
  const log = createLogger({ now: () => Date.UTC(2026, 0, 2, 3, 4, 5, 678), ...opts, stream });
  const json = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { lines, log, json };
}

describe('createLogger', () => {
  it('writes one JSON line per call with stable field names', () => {
    const { log, lines, json } = capture();
    log.child({ component: 'probe' }).info('probe failed', { target: 'web', durationMs: 12 });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    expect(json()[0]).toEqual({
      time: '2026-01-02T03:04:05.678Z',
      level: 'info',
      msg: 'probe failed',
      component: 'probe',
      target: 'web',
      durationMs: 12,
    });
    expect(Object.keys(json()[0]!).slice(0, 3)).toEqual(['time', 'level', 'msg']);
  });

  it('drops lines below the level and keeps fields from nested children', () => {
    const { log, json } = capture({ level: 'warn' });
    const child = log.child({ component: 'store' }).child({ db: 'sqlite' });
    child.info('hidden');
    child.debug('hidden');
    child.warn('slow write', { ms: 900 });
    child.error('gone');
    expect(json().map((l) => [l.level, l.msg, l.component, l.db])).toEqual([
      ['warn', 'slow write', 'store', 'sqlite'],
      ['error', 'gone', 'store', 'sqlite'],
    ]);
  });

  it('does not let fields overwrite time, level or msg', () => {
    const { log, json } = capture();
    log.info('real', { msg: 'fake', level: 'error', time: 'never' });
    expect(json()[0]).toMatchObject({ msg: 'real', level: 'info', time: '2026-01-02T03:04:05.678Z' });
  });

  it('redacts secret-named fields and URL passwords, recursively', () => {
    const { log, lines, json } = capture();
    log.child({ token: 'child-secret' }).warn('connect failed', {
      url: 'amqp://guest:hunter2@rabbit.internal:5672/vhost',
      transport: { apiKey: 'k-123', options: { Authorization: 'Bearer abc', password: 'p' } },
      headers: [{ 'x-api-key': 'zz' }, { name: 'ok' }],
      urls: [new URL('redis://:s3cret@cache:6379')],
      error: new Error('cannot reach postgres://app:pgpass@db/coalmine'),
      client_secret: 42,
      note: 'no secret here',
    });
    const text = lines.join('');
    for (const secret of ['child-secret', 'hunter2', 'k-123', 'Bearer abc', 'zz', 's3cret', 'pgpass', '42'])
      expect(text).not.toContain(secret);
    const line = json()[0]!;
    expect(line).toMatchObject({
      token: '***',
      url: 'amqp://guest:***@rabbit.internal:5672/vhost',
      transport: { apiKey: '***', options: { Authorization: '***', password: '***' } },
      headers: [{ 'x-api-key': '***' }, { name: 'ok' }],
      urls: ['redis://:***@cache:6379'],
      error: { name: 'Error', message: 'cannot reach postgres://app:***@db/coalmine' },
      client_secret: '***',
      note: 'no secret here',
    });
  });

  it('redacts secret query parameters and secrets in the message itself', () => {
    const { log, lines, json } = capture();
    log.info('open http://a:pw1@h/x?token=t0k&page=2', {
      dashboard: 'http://127.0.0.1:9777/?token=cm_abc123',
      hook: 'https://hooks.example/in?api_key=k9&access_token=a7&empty=&name=ok',
    });
    const text = lines.join('');
    for (const secret of ['pw1', 't0k', 'cm_abc123', 'k9', 'a7']) expect(text).not.toContain(secret);
    expect(json()[0]).toMatchObject({
      msg: 'open http://a:***@h/x?token=***&page=2',
      dashboard: 'http://127.0.0.1:9777/?token=***',
      hook: 'https://hooks.example/in?api_key=***&access_token=***&empty=&name=ok',
    });
  });

  it('never throws on circular or odd values', () => {
    const { log, json } = capture();
    const loop: Record<string, unknown> = { name: 'a' };
    loop.self = loop;
    const shared = { x: 1 };
    const hostile = {
      get boom(): never {
        throw new Error('getter');
      },
    };
    expect(() =>
      log.error('odd', {
        loop,
        twice: [shared, shared],
        big: 10n ** 20n,
        nan: Number.NaN,
        fn: function probe() {},
        sym: Symbol('s'),
        hostile,
        bytes: new Uint8Array(4),
        when: new Date(0),
        map: new Map([['password', 'p']]),
      }),
    ).not.toThrow();
    expect(json()[0]).toMatchObject({
      loop: { name: 'a', self: '[circular]' },
      twice: [{ x: 1 }, { x: 1 }],
      big: '100000000000000000000',
      nan: 'NaN',
      fn: '[function probe]',
      sym: 'Symbol(s)',
      hostile: { boom: '[unreadable]' },
      bytes: '[Uint8Array 4 bytes]',
      when: '1970-01-01T00:00:00.000Z',
      map: { password: '***' },
    });
  });

  it('never throws when the stream does', () => {
    const log = createLogger({
      format: 'json',
      stream: {
        write: () => {
          throw new Error('EPIPE');
        },
      },
    });
    expect(() => log.info('lost')).not.toThrow();
  });

  it('writes pretty lines to a terminal in auto format, JSON elsewhere', () => {
    const tty = capture({ isTTY: true });
    tty.log.child({ component: 'agent' }).info('listening', { url: 'http://u:pw@127.0.0.1:9777' });
    expect(tty.lines[0]).toContain('[agent] listening url=http://u:***@127.0.0.1:9777');
    expect(tty.lines[0]).toContain('03:04:05.678');
    expect(tty.lines[0]).not.toContain('pw@');
    expect(() => JSON.parse(tty.lines[0]!)).toThrow();

    const pipe = capture({ isTTY: false, format: 'auto' });
    pipe.log.info('listening');
    expect(pipe.json()[0]?.msg).toBe('listening');

    const forcedJson = capture({ isTTY: true, format: 'json' });
    forcedJson.log.info('x');
    expect(forcedJson.json()[0]?.msg).toBe('x');

    const forcedPretty = capture({ isTTY: false, format: 'pretty' });
    forcedPretty.log.warn('y');
    expect(forcedPretty.lines[0]).toMatch(/WARN .*y\n$/);
  });
});

/**
 * How many times longer `b` takes than `a`: each is timed in turns (so a busy machine slows both),
 * repeated for at least 5 ms a turn, and the fastest turn of each counts.
 */
function timeRatio(a: () => void, b: () => void): number {
  const per = (fn: () => void) => {
    let calls = 0;
    const t0 = performance.now();
    let elapsed = 0;
    do {
      fn();
      calls++;
      elapsed = performance.now() - t0;
    } while (elapsed < 5);
    return elapsed / calls;
  };
  let bestA = Infinity;
  let bestB = Infinity;
  for (let turn = 0; turn < 7; turn++) {
    bestA = Math.min(bestA, per(a));
    bestB = Math.min(bestB, per(b));
  }
  return bestB / bestA;
}

// Shapes that made the old patterns backtrack: each start position rescanned the rest of the text.
const ADVERSARIAL: Record<string, (n: number) => string> = {
  'ftp:// and letters': (n) => `ftp://${'a'.repeat(n)}`,
  letters: (n) => 'a'.repeat(n),
  'many @': (n) => '@'.repeat(n),
  'many ://': (n) => 'a://'.repeat(n / 4),
  'many ://b:': (n) => 'a://b:'.repeat(n / 6),
  '?token= repeated': (n) => '?token=x'.repeat(n / 8),
  'many ? then a newline': (n) => `${'?'.repeat(n)}\n`,
  'an endless password': (n) => `http://u:${'p'.repeat(n)}`,
};

describe('redaction is bounded', () => {
  for (const [shape, make] of Object.entries(ADVERSARIAL)) {
    it(`takes linear time on ${shape}`, () => {
      // Both sizes lie within the part of a string redaction reads, so this times the scans themselves.
      const small = make(1000);
      const large = make(64_000);
      // 64 times the text: linear is about 64 times the time (the old patterns: 4096 times). The bound
      // leaves room for a busy machine.
      expect(
        timeRatio(
          () => redactText(small),
          () => redactText(large),
        ),
      ).toBeLessThan(1000);
    });
  }

  it('writes at most a few KiB of a 1 MB or 5 MB string, quickly, with how much was left out', () => {
    for (const n of [1 << 20, 5_000_000]) {
      for (const make of Object.values(ADVERSARIAL)) {
        const text = make(n);
        const t0 = performance.now();
        const out = redact(text) as string;
        expect(performance.now() - t0).toBeLessThan(1000);
        expect(out.length).toBeLessThan(LOG_LIMITS.maxString + 40);
        expect(out).toMatch(/…\(\d+ more characters\)$/);
      }
    }
    const { log, lines } = capture();
    log.warn('target down', { address: `ftp://${'a'.repeat(15_000)}`, err: { message: 'x'.repeat(1e6) } });
    expect(lines[0]!.length).toBeLessThan(2 * LOG_LIMITS.maxString + 400);
    expect(lines[0]).toContain('…(10910 more characters)');
  });

  it('still redacts secrets in long strings, and a password cut off by the bounds', () => {
    const pad = 'x'.repeat(1000);
    expect(redactText(`${pad} amqp://u:hunter2@h ${pad}?token=t0k&a=1 ${'y'.repeat(1e6)}`)).not.toMatch(
      /hunter2|t0k/,
    );
    // A password too long to see its "@" is redacted all the same.
    const endless = redactText(`${pad} redis://u:${'s'.repeat(1e6)}@host`);
    expect(endless).toMatch(/^x+ redis:\/\/u:\*\*\*…\(\d+ more characters\)$/);
    expect(redactText(`${'a'.repeat(5000)}?token=s3cret`)).not.toContain('s3cret');
  });

  it('redacts as the patterns it replaced did', () => {
    // The old patterns, fine on short text: the reference for the hand-written scans.
    const urlPassword = /([a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)[^@\s/]*@/gi;
    const queryParam = /([?&])([^=&#\s]+)=([^&#\s]*)/g;
    const secretKey = /token|password|passwd|secret|authorization|api[-_]?key|cookie/i;
    const reference = (text: string) =>
      text
        .replace(urlPassword, '$1***@')
        .replace(queryParam, (whole, sep: string, name: string, value: string) =>
          value !== '' && secretKey.test(name) ? `${sep}${name}=***` : whole,
        );
    const pieces = ['a', 'Z', '1', ':', '/', '@', '?', '&', '=', '#', ' ', '\n', '.', '+', '-'];
    pieces.push('token', 'ftp', '://', 'api_key', '\u00a0');
    let seed = 7;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 20_000; i++) {
      let text = '';
      for (let n = Math.floor(random() * 24); n > 0; n--)
        text += pieces[Math.floor(random() * pieces.length)];
      expect(redactText(text), JSON.stringify(text)).toBe(reference(text));
    }
  });

  it('cuts deep, wide and long values', () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 1000; i++) deep = { next: deep };
    const wide = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]));
    const out = redact({ deep, wide, list: Array.from({ length: 5000 }, (_, i) => i) }) as {
      deep: unknown;
      wide: Record<string, unknown>;
      list: unknown[];
    };
    expect(JSON.stringify(out.deep)).toContain('[depth limit]');
    expect(Object.keys(out.wide)).toHaveLength(LOG_LIMITS.maxItems + 1);
    expect(out.wide['…']).toBe('(4900 more)');
    expect(out.list).toHaveLength(LOG_LIMITS.maxItems + 1);
    expect(out.list.at(-1)).toBe('…(4900 more)');
    // Every value of a line counts against one budget, however the values nest.
    const grid = Array.from({ length: 100 }, () => Array.from({ length: 100 }, () => ({ a: 1 })));
    expect(JSON.stringify(redact(grid)).length).toBeLessThan(60_000);
  });
});
