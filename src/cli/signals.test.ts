import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../core/log.js';
import { guardProcess } from './signals.js';

function jsonLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    format: 'json',
    stream: { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) },
  });
  return { log, lines };
}

function fakeProcess() {
  const exits: number[] = [];
  return Object.assign(new EventEmitter(), { exits, exit: (code: number) => void exits.push(code) });
}

describe('guardProcess', () => {
  it('logs an unhandled rejection at error level and keeps running', () => {
    const proc = fakeProcess();
    const { log, lines } = jsonLogger();
    guardProcess(log, proc);
    proc.emit('unhandledRejection', new Error('redis said no to redis://app:hunter2@127.0.0.1:1'));
    proc.emit('unhandledRejection', 'a bare string');
    expect(proc.exits).toEqual([]);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 'error',
      component: 'process',
      err: { name: 'Error', message: 'redis said no to redis://app:***@127.0.0.1:1' },
    });
    expect(lines[0]!.stack).toMatch(/^Error: redis said no .*\n\s+at /);
    expect(JSON.stringify(lines)).not.toContain('hunter2');
    expect(lines[1]).toMatchObject({ level: 'error', err: 'a bare string' });
  });

  it('logs an uncaught exception, then exits 1', () => {
    const proc = fakeProcess();
    const { log, lines } = jsonLogger();
    guardProcess(log, proc);
    proc.emit('uncaughtException', new TypeError('x is not a function'));
    expect(proc.exits).toEqual([1]);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'error',
        msg: expect.stringContaining('exiting'),
        err: { name: 'TypeError', message: 'x is not a function' },
      }),
    ]);
  });

  it('installs its handlers once and logs to the latest logger', () => {
    const proc = fakeProcess();
    const first = jsonLogger();
    const second = jsonLogger();
    guardProcess(first.log, proc);
    guardProcess(second.log, proc);
    expect(proc.listenerCount('unhandledRejection')).toBe(1);
    proc.emit('unhandledRejection', new Error('late'));
    expect(first.lines).toEqual([]);
    expect(second.lines).toHaveLength(1);
  });
});
