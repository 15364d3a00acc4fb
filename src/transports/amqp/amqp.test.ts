import { describe, expect, it } from 'vitest';
import { TransportError } from '../transport.js';
import { parseAmqpUrl } from './index.js';

describe('parseAmqpUrl', () => {
  it('has defaults a canary can run on: topic exchange coalmine, confirms on, transient', () => {
    const cfg = parseAmqpUrl('amqp://127.0.0.1');
    expect(cfg).toMatchObject({ exchange: 'coalmine', confirm: true, durable: false, prefetch: 1000 });
    expect(cfg.connect).toMatchObject({ hostname: '127.0.0.1', port: 5672, vhost: '/', heartbeat: 10 });
    expect(cfg.connect.username).toBeUndefined(); // amqplib then uses guest/guest
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

  it('rejects what it does not understand, naming the option and hiding the password', () => {
    for (const [url, why] of [
      ['amqp://u:secret@h/?prefetch=-1', /prefetch/],
      ['amqp://u:secret@h/?confirm=yes', /confirm/],
      ['amqp://u:secret@h/?exchange=a%20b', /exchange/],
      ['amqp://u:secret@h/?prefech=1', /unknown option prefech/],
      ['mqtt://u:secret@h/', /scheme/],
    ] as const) {
      let err: unknown;
      try {
        parseAmqpUrl(url);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TransportError);
      expect((err as Error).message).toMatch(why);
      expect((err as Error).message).not.toContain('secret');
    }
  });
});
