import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.js';
import { parseRedisUrl } from './url.js';

describe('parseRedisUrl', () => {
  it('reads pub/sub URLs with credentials and database', () => {
    const c = parseRedisUrl('redis://alice:p%40ss@redis.example:6380/3');
    expect(c.mode).toBe('pubsub');
    expect(c.connection).toMatchObject({
      host: 'redis.example',
      port: 6380,
      db: 3,
      username: 'alice',
      password: 'p@ss',
    });
    expect(c.connection.tls).toBeUndefined();
  });

  it('turns on TLS for rediss:// and checks the certificate against the host', () => {
    expect(parseRedisUrl('rediss://redis.example').connection).toMatchObject({
      port: 6379,
      db: 0,
      tls: { servername: 'redis.example' },
    });
    expect(parseRedisUrl('rediss+stream://redis.example').mode).toBe('stream');
  });

  it('reads stream options with their defaults', () => {
    expect(parseRedisUrl('redis+stream://h')).toMatchObject({
      mode: 'stream',
      maxlen: 10_000,
      group: undefined,
    });
    expect(parseRedisUrl('redis+stream://h/1?maxlen=50&group=eu-1&consumer=c1')).toMatchObject({
      maxlen: 50,
      group: 'eu-1',
      consumer: 'c1',
      connection: { db: 1 },
    });
  });

  it.each([
    ['redis://h?maxlen=5', /unknown option \?maxlen=/],
    ['redis+stream://h?maxlen=0', /maxlen must be a positive integer/],
    ['redis+stream://h?bogus=1', /unknown option \?bogus=.*known: maxlen, group, consumer/],
    ['redis://h/x', /database must be a number/],
    ['redis://:secret@h?x=1', /^redis:\/\/:\*\*\*@h/],
  ])('rejects %s with a message saying what is wrong', (url, message) => {
    let err: unknown;
    try {
      parseRedisUrl(url);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('secret');
  });
});
