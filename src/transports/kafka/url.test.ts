import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.js';
import { AppendTimes } from './append-time.js';
import { parseKafkaUrl, topicFor } from './url.js';

describe('parseKafkaUrl', () => {
  it('reads a broker list and defaults to acks=all, no group, from now on', () => {
    expect(parseKafkaUrl('kafka://a:9092,b:9093,c')).toEqual({
      brokers: ['a:9092', 'b:9093', 'c:9092'],
      acks: -1,
      group: undefined,
      fromBeginning: false,
    });
  });

  it('reads acks, group and fromBeginning', () => {
    expect(parseKafkaUrl('kafka://127.0.0.1:9092/?acks=0&group=eu-1&fromBeginning=true')).toMatchObject({
      acks: 0,
      group: 'eu-1',
      fromBeginning: true,
    });
    expect(parseKafkaUrl('kafka://h:1?acks=1').acks).toBe(1);
  });

  it.each([
    'kafka://h:1?acks=2',
    'kafka://h:1?bogus=1',
    'kafka://h:1?fromBeginning=yes',
    'kafka://',
    'http://h:1',
  ])('rejects %s with a ConfigError', (url) => {
    expect(() => parseKafkaUrl(url)).toThrow(ConfigError);
  });
});

describe('topicFor', () => {
  it('keeps dotted channel names and maps characters Kafka does not allow', () => {
    expect(topicFor('coalmine.coalminer.eu-1')).toBe('coalmine.coalminer.eu-1');
    expect(topicFor('a b/c')).toBe('a_b_c');
    expect(topicFor('..')).toBe('_..');
  });
});

describe('AppendTimes', () => {
  it('gives the append time of LogAppendTime batches only, by partition and offset', () => {
    const times = new AppendTimes();
    times.record({
      responses: [
        {
          partitions: [
            {
              partitionIndex: 0,
              records: [
                { attributes: 8, firstOffset: 10n, lastOffsetDelta: 2, maxTimestamp: 1000n },
                { attributes: 0, firstOffset: 13n, lastOffsetDelta: 0, maxTimestamp: 2000n },
              ],
            },
          ],
        },
      ],
    });
    expect(times.lookup(0, 11n)).toBe(1000n);
    expect(times.lookup(0, 12n)).toBe(1000n);
    expect(times.lookup(0, 13n)).toBeUndefined();
    expect(times.lookup(1, 11n)).toBeUndefined();
  });
});
