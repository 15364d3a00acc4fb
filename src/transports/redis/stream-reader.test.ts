import { describe, expect, it } from 'vitest';
import { compareStreamIds, parseReadReply, streamIdNs } from './stream-reader.js';

describe('stream ids', () => {
  it('compare numerically, not as text', () => {
    expect(compareStreamIds('10-0', '9-5')).toBe(1);
    expect(compareStreamIds('9-10', '9-9')).toBe(1);
    expect(compareStreamIds('9-9', '9-9')).toBe(0);
    expect(compareStreamIds('1718000000000-0', '1718000000001-0')).toBe(-1);
  });

  it('give the broker time in ns from their millisecond part', () => {
    expect(streamIdNs('1718000000123-7')).toBe(1_718_000_000_123_000_000n);
    expect(streamIdNs('nonsense')).toBeUndefined();
  });
});

describe('parseReadReply', () => {
  it('takes the payload field of each entry, and marks entries trimmed while pending', () => {
    const reply = [
      [
        Buffer.from('coalmine.x'),
        [
          [
            Buffer.from('1-0'),
            [Buffer.from('other'), Buffer.from('z'), Buffer.from('p'), Buffer.from('cm1 a')],
          ],
          [Buffer.from('1-1'), null],
        ],
      ],
    ];
    const entries = parseReadReply(reply);
    expect(entries.map((e) => ({ id: e.id, payload: e.payload?.toString() }))).toEqual([
      { id: '1-0', payload: 'cm1 a' },
      { id: '1-1', payload: undefined },
    ]);
    expect(parseReadReply(null)).toEqual([]);
  });
});
