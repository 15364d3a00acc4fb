import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { until } from '../../../test/support/async.js';
import { Canary } from '../../messaging/canary.js';
import { canaryChannel } from '../../messaging/channels.js';
import { encode } from '../../messaging/envelope.js';
import { wallClockNs } from '../../transports/base.js';
import { MemoryTransport } from '../../transports/memory/index.js';
import { MessagingMetrics } from './messaging-metrics.js';

describe('MessagingMetrics for a canary', () => {
  it('counts refused registrations by reason and drops the series of pruned coalminers', async () => {
    const t = new MemoryTransport('memory://messaging-metrics');
    await t.connect();
    const registry = new Registry();
    const metrics = new MessagingMetrics(registry, [0.01, 0.1]);
    const canary = new Canary({
      name: 'c',
      transport: t,
      ratePerSecond: 50,
      maxCoalminers: 2,
      allow: ['m*'],
      observer: metrics.canaryObserver('c', 'memory'),
    });
    await canary.start();
    const now = wallClockNs();
    const send = (type: 'register' | 'unregister', coalminer: string) =>
      t.publish(
        canaryChannel('coalmine', 'c'),
        encode({ type, canary: 'c', coalminer, runId: 0n, seq: 0n, intendedNs: now, sentNs: now }, false),
      );
    // Six coalminers come and go, two at a time, and one name is not allowed.
    for (let i = 0; i < 6; i += 2) {
      await send('register', `m${i}`);
      await send('register', `m${i + 1}`);
      await send('register', `m${i + 9}`); // a third: over the limit
      await until(() => canary.coalminers().length === 2, 'two flows');
      await until(
        () => ['m' + i, 'm' + (i + 1)].every((c) => (canary.stats().get(c)?.sent ?? 0) > 0),
        'both pinged',
      );
      await send('unregister', `m${i}`);
      await send('unregister', `m${i + 1}`);
      await until(() => canary.coalminers().length === 0, 'both gone');
    }
    await send('register', 'stranger');
    await until(() => canary.refused().not_allowed === 1, 'refusal');
    await canary.stop();
    const text = await registry.metrics();
    expect(text).toContain(
      'coalmine_canary_registrations_refused_total{canary="c",transport="memory",reason="limit"} 3',
    );
    expect(text).toContain(
      'coalmine_canary_registrations_refused_total{canary="c",transport="memory",reason="not_allowed"} 1',
    );
    // Only the last maxCoalminers retired coalminers keep series of their own.
    const named = new Set(
      [...text.matchAll(/coalmine_messages_sent_total\{[^}]*coalminer="(m\d+)"/g)].map((m) => m[1]),
    );
    expect([...named].sort()).toEqual(['m4', 'm5']);
    await t.close();
  });
});
