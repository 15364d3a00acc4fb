import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.js';
import { checkUrl, parseRedisUrl } from './url.js';

const dir = mkdtempSync(join(tmpdir(), 'coalmine-redis-url-'));
const pem = join(dir, 'a.pem');
writeFileSync(pem, '-----BEGIN CERTIFICATE-----\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
      tls: { servername: 'redis.example', rejectUnauthorized: true },
    });
    expect(parseRedisUrl('rediss+stream://redis.example').mode).toBe('stream');
    // No IP address as SNI: the certificate is checked against the address.
    expect(parseRedisUrl('rediss://127.0.0.1').connection.tls).toEqual({ rejectUnauthorized: true });
  });

  it('reads the CA, client certificate, server name and insecure=1, and passwordEnv=', () => {
    process.env.COALMINE_TEST_REDIS_PW = 'from-env';
    try {
      const c = parseRedisUrl(
        `rediss+stream://127.0.0.1:6390?ca=${pem}&cert=${pem}&key=${pem}&servername=r.internal&insecure=1&passwordEnv=COALMINE_TEST_REDIS_PW&maxlen=5`,
      );
      expect(c).toMatchObject({ mode: 'stream', maxlen: 5 });
      expect(c.connection).toMatchObject({
        password: 'from-env',
        tls: { servername: 'r.internal', rejectUnauthorized: false },
      });
      expect(Buffer.isBuffer((c.connection.tls as { ca?: unknown }).ca)).toBe(true);
    } finally {
      delete process.env.COALMINE_TEST_REDIS_PW;
    }
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
    ['redis://h?maxlen=5', /maxlen= is a stream option: use redis\+stream:\/\//],
    ['redis+stream://h?maxlen=0', /maxlen= must be a positive integer/],
    ['redis+stream://h?bogus=1', /unknown option bogus=.*known: maxlen, group, consumer/],
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

describe('checkUrl', () => {
  it('passes good URLs', () => {
    expect(checkUrl(`rediss://:pw@h:6380/2?ca=${pem}`)).toEqual([]);
    expect(checkUrl('redis+stream://h?group=g&consumer=c&maxlen=100')).toEqual([]);
  });

  it('lists every problem, each naming its option', () => {
    expect(checkUrl(`redis://h?ca=${pem}&group=g`)).toEqual([
      'group= is a stream option: use redis+stream:// for streams',
      'ca= is a TLS option: use rediss:// for TLS',
    ]);
    expect(checkUrl(`redis+stream://h?insecure=1&maxlen=-3&group=`)).toEqual([
      'insecure= is a TLS option: use rediss+stream:// for TLS',
      expect.stringMatching(/^maxlen= must be a positive integer/),
      expect.stringMatching(/^group= is empty/),
    ]);
    expect(checkUrl('rediss://h?cert=/nonexistent.pem&key=/nonexistent.key')).toEqual([
      'cert=/nonexistent.pem: no such file',
      'key=/nonexistent.key: no such file',
    ]);
    expect(checkUrl('rediss://h?passwordEnv=COALMINE_TEST_NOT_SET')).toEqual([
      'passwordEnv=COALMINE_TEST_NOT_SET: the environment variable COALMINE_TEST_NOT_SET is not set',
    ]);
  });
});
