import { describe, expect, it } from 'vitest';
import { createLogger } from '../core/log.js';
import type { Observation } from '../core/types.js';
import { logProbeTransitions } from './probe-transitions.js';

function observation(ok: boolean, startedAtMs: number, name = 'web'): Observation {
  const base = { durationNs: 1_000_000n, phases: {} };
  return {
    name,
    kind: 'http',
    target: 'https://ops:pw@web.internal/health',
    startedAtMs,
    result: ok
      ? { ok: true, ...base }
      : {
          ok: false,
          ...base,
          error: { code: 'refused', message: 'connection refused', cause: 'ECONNREFUSED' },
        },
  };
}

describe('logProbeTransitions', () => {
  it('logs a target going down once, and coming back with how long it was down', () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({
      format: 'json',
      level: 'debug',
      stream: { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) },
    });
    const observe = logProbeTransitions(log);
    observe(observation(true, 1000));
    observe(observation(true, 2000));
    observe(observation(false, 3000));
    observe(observation(false, 4000));
    observe(observation(false, 5000, 'db'));
    observe(observation(true, 7500));
    expect(lines.map((l) => [l.level, l.msg, l.target])).toEqual([
      ['debug', 'target up', 'web'],
      ['warn', 'target down', 'web'],
      ['warn', 'target down', 'db'],
      ['info', 'target up', 'web'],
    ]);
    expect(lines[1]).toMatchObject({
      component: 'probe',
      kind: 'http',
      address: 'https://ops:***@web.internal/health',
      err: { code: 'refused', message: 'connection refused', cause: 'ECONNREFUSED' },
    });
    expect(lines[3]).toMatchObject({ downMs: 4500 });
  });
});
