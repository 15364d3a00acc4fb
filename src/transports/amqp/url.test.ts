import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.js';
import { checkUrl, parseAmqpUrl } from './url.js';

const dir = mkdtempSync(join(tmpdir(), 'coalmine-amqp-url-'));
const ca = join(dir, 'ca.pem');
writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parseAmqpUrl', () => {
  it('has defaults a canary can run on: topic exchange coalmine, confirms on, transient', () => {
    const cfg = parseAmqpUrl('amqp://127.0.0.1');
    expect(cfg).toMatchObject({ exchange: 'coalmine', confirm: true, durable: false, prefetch: 1000 });
    expect(cfg.connect).toMatchObject({ hostname: '127.0.0.1', port: 5672, vhost: '/', heartbeat: 10 });
    expect(cfg.connect.username).toBeUndefined(); // amqplib then uses guest/guest
    expect(cfg.tls).toBeUndefined();
  });

  it('reads credentials, vhost and options', () => {
    const cfg = parseAmqpUrl(
      'amqps://us%40er:p%2Fss@mq.example:5671/prod%2Feu?exchange=pings&confirm=false&durable=true&prefetch=10&queue=cm&heartbeat=0',
    );
    expect(cfg.connect).toMatchObject({
      protocol: 'amqps',
      hostname: 'mq.example',
      port: 5671,
      username: 'us@er',
      password: 'p/ss',
      vhost: 'prod/eu',
      heartbeat: 0,
    });
    expect(cfg).toMatchObject({
      exchange: 'pings',
      confirm: false,
      durable: true,
      prefetch: 10,
      queuePrefix: 'cm',
    });
  });

  it('verifies amqps:// against the host by default, and reads the CA, server name and insecure=1', () => {
    expect(parseAmqpUrl('amqps://mq.example').tls).toEqual({
      servername: 'mq.example',
      rejectUnauthorized: true,
    });
    // An IP is no SNI name: the certificate is checked against the address.
    expect(parseAmqpUrl('amqps://127.0.0.1').tls).toEqual({ rejectUnauthorized: true });
    const tls = parseAmqpUrl(`amqps://127.0.0.1?ca=${ca}&servername=mq.internal&insecure=1`).tls;
    expect(tls).toMatchObject({ servername: 'mq.internal', rejectUnauthorized: false });
    expect(tls?.ca?.toString()).toContain('BEGIN CERTIFICATE');
  });

  it('takes the password from passwordEnv=, never needing it in the URL', () => {
    process.env.COALMINE_TEST_AMQP_PW = 's3cret';
    try {
      expect(
        parseAmqpUrl('amqps://alice@mq.example?passwordEnv=COALMINE_TEST_AMQP_PW').connect,
      ).toMatchObject({
        username: 'alice',
        password: 's3cret',
      });
    } finally {
      delete process.env.COALMINE_TEST_AMQP_PW;
    }
  });

  it('rejects what it does not understand, naming the option and hiding the password', () => {
    for (const [url, why] of [
      ['amqp://u:secret@h/?prefetch=-1', /prefetch= must be an integer from 0 to 65535/],
      ['amqp://u:secret@h/?prefetch=70000', /prefetch=/],
      ['amqp://u:secret@h/?confirm=maybe', /confirm=/],
      ['amqp://u:secret@h/?exchange=a%20b', /exchange=/],
      ['amqp://u:secret@h/?prefech=1', /unknown option prefech=/],
      ['mqtt://u:secret@h/', /scheme/],
    ] as const) {
      let err: unknown;
      try {
        parseAmqpUrl(url);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(why);
      expect((err as Error).message).not.toContain('secret');
    }
  });
});

describe('checkUrl', () => {
  it('passes a good URL', () => {
    expect(checkUrl(`amqps://u:p@h/v?prefetch=5&ca=${ca}&servername=h.example`)).toEqual([]);
  });

  it('lists every problem, each naming its option', () => {
    delete process.env.COALMINE_TEST_UNSET;
    expect(
      checkUrl(`amqp://h/?prefetch=x&heartbeat=-1&ca=${ca}&insecure=1&connectTimeoutMs=0&confirm=maybe`),
    ).toEqual([
      expect.stringMatching(/^heartbeat= must be an integer from 0 to 65535 \(seconds/),
      'ca= is a TLS option: use amqps:// for TLS',
      'insecure= is a TLS option: use amqps:// for TLS',
      expect.stringMatching(/^confirm= must be true or false/),
      expect.stringMatching(/^prefetch= must be an integer from 0 to 65535/),
      expect.stringMatching(/^connectTimeoutMs= must be a positive integer \(milliseconds\)/),
    ]);
    expect(checkUrl(`amqps://h/?ca=${dir}/missing.pem&cert=${ca}`)).toEqual([
      `ca=${dir}/missing.pem: no such file`,
      'cert= and key= go together: a client certificate needs its private key',
    ]);
    expect(checkUrl('amqps://u@h/?passwordEnv=COALMINE_TEST_UNSET')).toEqual([
      'passwordEnv=COALMINE_TEST_UNSET: the environment variable COALMINE_TEST_UNSET is not set',
    ]);
    expect(checkUrl('amqps://u:p@h/?passwordEnv=X')).toEqual([
      'give the password in the URL or with passwordEnv=, not both',
    ]);
    expect(checkUrl('amqps://h/?servername=a%20b')).toEqual(['servername= must be a DNS name, got "a b"']);
  });
});
