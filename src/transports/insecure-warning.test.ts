import { afterEach, describe, expect, it } from 'vitest';
import type { LogFields, Logger } from '../core/log.js';
import { createTransport } from './registry.js';
import type { Transport } from './transport.js';

/** Every line as given to the logger, before the logger's own redaction, so the masking tested is ours. */
function recorder() {
  const lines: { level: string; msg: string; fields?: LogFields }[] = [];
  const at =
    (level: string) =>
    (msg: string, fields?: LogFields): void => {
      lines.push({ level, msg, ...(fields ? { fields } : {}) });
    };
  const log: Logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => log,
  };
  return { lines, log };
}

const opened: Transport[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

async function open(url: string) {
  const { lines, log } = recorder();
  const t = await createTransport(url, { clientName: 'test' }, log);
  opened.push(t);
  return { lines, t };
}

// One URL per TLS kind, each with a secret that must not reach the log. Nothing connects.
const insecure = [
  'rediss://coalmine:s3cret@127.0.0.1:6380/?insecure=1',
  'rediss+stream://coalmine:s3cret@127.0.0.1:6380/?insecure=1&group=g',
  'amqps://coalmine:s3cret@127.0.0.1:5671/?insecure=true',
  'mqtts://coalmine:s3cret@127.0.0.1:8883/?insecure=1',
  'nats://s3cret@127.0.0.1:4443/?tls=1&insecure=1',
  'nats+jetstream://coalmine:s3cret@127.0.0.1:4443/?tls=1&insecure=1',
  'kafka://coalmine:s3cret@127.0.0.1:9093/?tls=1&sasl=scram-sha-256&insecure=1',
];

describe('createTransport with insecure=1', () => {
  it.each(insecure)('logs one warning naming the masked URL: %s', async (url) => {
    const { lines, t } = await open(url);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.level).toBe('warn');
    expect(lines[0]!.msg).toContain(`${t.displayUrl}: insecure=1`);
    expect(lines[0]!.msg).toContain('certificate is not verified');
    expect(lines[0]!.msg).toContain('***@127.0.0.1');
    expect(lines[0]!.msg).not.toContain('s3cret');
  });

  it.each(insecure.map((u) => u.replace(/insecure=(1|true)/, 'insecure=0')))(
    'logs nothing with insecure=0: %s',
    async (url) => {
      expect((await open(url)).lines).toEqual([]);
    },
  );

  it.each(insecure.map((u) => u.replace(/[?&]insecure=(1|true)/, '').replace(/\/&/, '/?')))(
    'logs nothing without insecure=: %s',
    async (url) => {
      expect((await open(url)).lines).toEqual([]);
    },
  );

  it.each([
    ['postgres://coalmine:s3cret@127.0.0.1:5432/test?sslmode=no-verify', 'sslmode=no-verify'],
    [
      'postgres://coalmine:s3cret@127.0.0.1:5432/test?sslmode=require&uselibpqcompat=true',
      'sslmode=require with uselibpqcompat=true',
    ],
  ])('logs one warning for PostgreSQL without certificate checks: %s', async (url, what) => {
    const { lines, t } = await open(url);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.level).toBe('warn');
    expect(lines[0]!.msg).toContain(`${t.displayUrl}: ${what}`);
    expect(lines[0]!.msg).toContain('certificate is not verified');
    expect(lines[0]!.msg).not.toContain('s3cret');
  });

  it.each([
    'postgres://coalmine:s3cret@127.0.0.1:5432/test?sslmode=require',
    'postgres://coalmine:s3cret@127.0.0.1:5432/test?sslmode=verify-full',
    'postgres://coalmine:s3cret@127.0.0.1:5432/test?sslmode=disable&uselibpqcompat=true',
  ])('logs nothing for PostgreSQL that verifies or does not encrypt: %s', async (url) => {
    expect((await open(url)).lines).toEqual([]);
  });

  it('refuses insecure=1 on a plain connection instead of warning about it', async () => {
    for (const url of ['redis://127.0.0.1:6379/?insecure=1', 'kafka://127.0.0.1:9092/?insecure=1']) {
      const { lines, log } = recorder();
      await expect(createTransport(url, {}, log)).rejects.toThrow(/insecure= is a TLS option/);
      expect(lines).toEqual([]);
    }
  });
});
