import { describe, expect, it } from 'vitest';
import { beforeFirst, stripTrailing } from './text.js';

describe('linear-time string edits', () => {
  it('strip a trailing run and cut at a first character', () => {
    expect(stripTrailing('http://am:9093///', '/')).toBe('http://am:9093');
    expect(stripTrailing('///', '/')).toBe('');
    expect(stripTrailing('a/b', '/')).toBe('a/b');
    expect(beforeFirst('http://h/#/target/x#y', '#')).toBe('http://h/');
    expect(beforeFirst('http://h/', '#')).toBe('http://h/');
  });

  it('take milliseconds on the inputs that made the patterns they replace take seconds', () => {
    const slashes = `http://a/${'/'.repeat(1 << 20)}x`;
    const hashes = `http://a/${'#'.repeat(1 << 20)}\nx`;
    const t0 = performance.now();
    expect(stripTrailing(slashes, '/')).toBe(slashes);
    expect(beforeFirst(hashes, '#')).toBe('http://a/');
    expect(performance.now() - t0).toBeLessThan(500);
  });
});
