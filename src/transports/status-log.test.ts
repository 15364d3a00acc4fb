import { describe, expect, it } from 'vitest';
import { createLogger, type LogLevel } from '../core/log.js';
import { StatusHub } from './base.js';
import { logTransportStatus } from './status-log.js';

function capture(level: LogLevel = 'debug') {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    format: 'json',
    level,
    stream: { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) },
  });
  return { lines, log };
}

/** Lets the status reader take what was set so far (it reads on its own turn, as in the agent). */
const settle = () => new Promise((r) => setImmediate(r));

describe('logTransportStatus', () => {
  it('logs the first connection, an outage with its retries, and how long it lasted', async () => {
    const hub = new StatusHub();
    const { lines, log } = capture();
    let clock = 1000;
    const done = logTransportStatus(
      { status: () => hub.stream() },
      log.child({ component: 'transport', transport: 'redis' }),
      () => clock,
    );
    hub.set({ type: 'connecting' });
    hub.set({ type: 'connected' });
    hub.set({ type: 'disconnected', error: 'ECONNRESET' });
    await settle();
    for (let attempt = 1; attempt <= 4; attempt++)
      hub.set({ type: 'reconnecting', attempt, delayMs: 100 * attempt, error: 'ECONNREFUSED' });
    await settle();
    clock = 3500;
    hub.set({ type: 'connected' });
    hub.set({ type: 'closed' });
    await done;
    expect(lines.map((l) => [l.level, l.msg, l.attempt ?? l.downMs ?? null])).toEqual([
      ['info', 'transport connected', null],
      ['warn', 'transport disconnected', null],
      ['warn', 'transport reconnecting', 1],
      ['warn', 'transport reconnecting', 2],
      ['debug', 'transport reconnecting', 3],
      ['warn', 'transport reconnecting', 4],
      ['warn', 'transport reconnected', 2500],
      ['debug', 'transport closed', null],
    ]);
    expect(lines[1]).toMatchObject({
      component: 'transport',
      transport: 'redis',
      err: { message: 'ECONNRESET' },
    });
    expect(lines[2]).toMatchObject({ retryInMs: 100, err: { message: 'ECONNREFUSED' } });
  });

  it('leaves failures of the first connection to the caller, and ends when the transport closes', async () => {
    const hub = new StatusHub();
    const { lines, log } = capture('info');
    const done = logTransportStatus({ status: () => hub.stream() }, log);
    hub.set({ type: 'connecting' });
    hub.set({ type: 'disconnected', error: 'ECONNREFUSED' });
    hub.set({ type: 'connecting' });
    hub.set({ type: 'closed' });
    await done;
    expect(lines).toEqual([]);
  });
});
