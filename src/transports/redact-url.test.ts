import { describe, expect, it } from 'vitest';
import { redactUrl } from './base.js';

describe('redactUrl', () => {
  it('masks the password of the userinfo and keeps the rest', () => {
    expect(redactUrl('redis://user:s3cret@127.0.0.1:6379/0')).toBe('redis://user:***@127.0.0.1:6379/0');
    expect(redactUrl('amqp://guest@127.0.0.1:5672')).toBe('amqp://guest@127.0.0.1:5672');
  });

  it('masks a NATS token given as the lone user name', () => {
    expect(redactUrl('nats://t0ken@127.0.0.1:4222')).toBe('nats://***@127.0.0.1:4222');
  });

  it('masks secrets in the query, whatever the scheme, and leaves other options alone', () => {
    expect(redactUrl('postgres://127.0.0.1:5432/test?password=s3cret&sslmode=require')).toBe(
      'postgres://127.0.0.1:5432/test?password=***&sslmode=require',
    );
    expect(redactUrl('https://hooks.example.test/in?channel=ops&token=abc123')).toBe(
      'https://hooks.example.test/in?channel=ops&token=***',
    );
    expect(redactUrl('kafka://127.0.0.1:9092/t?sasl_password=pw&api_key=k')).toBe(
      'kafka://127.0.0.1:9092/t?sasl_password=***&api_key=***',
    );
  });

  it('masks them in a URL that does not parse, too', () => {
    expect(redactUrl('postgres://u:pw@[bad/test?password=s3cret')).toBe(
      'postgres://u:***@[bad/test?password=***',
    );
  });
});
