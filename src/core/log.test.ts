import { describe, expect, it } from 'vitest';
import { createLogger, type LoggerOptions, type LogStream } from './log.js';

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
