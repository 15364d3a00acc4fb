import { describe, expect, it } from 'vitest';
import { createLogger } from '../core/log.js';
import {
  FATAL_SIGNAL_HINTS,
  FATAL_SIGNAL_MSG,
  fatalSignalLineTail,
  installFatalSignalLog,
  type FatalSignal,
} from './fatal-signals.js';

describe('the fatal-signal log line', () => {
  it.each(Object.keys(FATAL_SIGNAL_HINTS) as FatalSignal[])(
    'for %s is the line the logger would write, once the handler puts the time in',
    (signal) => {
      const time = Date.UTC(2024, 1, 29, 23, 59, 58, 7);
      const lines: string[] = [];
      createLogger({ format: 'json', stream: { write: (l) => lines.push(l) }, now: () => time }).error(
        FATAL_SIGNAL_MSG,
        { component: 'process', signal, hint: FATAL_SIGNAL_HINTS[signal] },
      );
      // What native/fatalsignal/fatalsignal.c writes: the head, 24 characters of time, the tail.
      expect(`{"time":"2024-02-29T23:59:58.007Z${fatalSignalLineTail(signal)}`).toBe(lines[0]);
    },
  );
});

describe('installFatalSignalLog without the native module', () => {
  it('returns false and logs nothing', () => {
    const written: unknown[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: unknown) => written.push(chunk) > 0) as typeof write;
    try {
      expect(installFatalSignalLog({ addonPath: '/nonexistent/build/Release/coalmine_icmp.node' })).toBe(
        false,
      );
    } finally {
      process.stderr.write = write;
    }
    expect(written).toEqual([]);
  });
});
