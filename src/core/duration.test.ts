import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration.js';

describe('parseDuration', () => {
  it.each([
    ['15s', 15_000],
    ['500ms', 500],
    ['1m30s', 90_000],
    ['2h', 7_200_000],
    ['250us', 0.25],
    ['1.5s', 1500],
    ['20', 20_000],
    [3, 3000],
  ])('%s is %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', 'soon', '10 s', '5x', '-1s', 's', '1s2'])('rejects %j', (text) =>
    expect(parseDuration(text)).toBeUndefined(),
  );
});
