import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.js';
import { parseNatsUrl, streamSubjectFor, subjectFor, subjectMatches } from './url.js';

describe('parseNatsUrl', () => {
  it('reads core URLs with credentials and a server list', () => {
    expect(parseNatsUrl('nats://u:p%40ss@a:4222,b?flush=true')).toMatchObject({
      jetstream: false,
      servers: ['a:4222', 'b:4222'],
      user: 'u',
      pass: 'p@ss',
      flush: true,
    });
    expect(parseNatsUrl('nats://tok@h:1').token).toBe('tok');
  });

  it('reads JetStream URLs with stream defaults', () => {
    expect(parseNatsUrl('nats+jetstream://h:4222')).toMatchObject({
      jetstream: true,
      stream: 'COALMINE',
      maxMsgs: 100_000,
    });
    expect(parseNatsUrl('nats+jetstream://h:4222?stream=S1&maxMsgs=5')).toMatchObject({
      stream: 'S1',
      maxMsgs: 5,
    });
  });

  it.each([
    'nats://h:1?stream=X',
    'nats+jetstream://h:1?flush=true',
    'nats+jetstream://h:1?maxMsgs=0',
    'nats+jetstream://h:1?stream=a.b',
  ])('rejects %s with a ConfigError', (url) => {
    expect(() => parseNatsUrl(url)).toThrow(ConfigError);
  });
});

describe('subjects', () => {
  it('maps channels to valid subjects', () => {
    expect(subjectFor('coalmine.coalminer.eu-1')).toBe('coalmine.coalminer.eu-1');
    expect(subjectFor('a b.*.>')).toBe('a_b._._');
    expect(subjectFor('a..b')).toBe('a._.b');
  });

  it('covers a channel with its first token wildcard', () => {
    expect(streamSubjectFor('other.x.y')).toBe('other.>');
    expect(streamSubjectFor('single')).toBe('single');
  });

  it('matches NATS wildcards', () => {
    expect(subjectMatches('coalmine.>', 'coalmine.a.b')).toBe(true);
    expect(subjectMatches('coalmine.>', 'coalmine')).toBe(false);
    expect(subjectMatches('a.*.c', 'a.b.c')).toBe(true);
    expect(subjectMatches('a.*', 'a.b.c')).toBe(false);
    expect(subjectMatches('a.b', 'a.b')).toBe(true);
  });
});
