import { describe, expect, it } from 'vitest';
import { until } from '../../../test/support/async.js';
import { deliveringButFailing } from '../../../test/support/lossy.js';
import { Canary } from '../../messaging/canary.js';
import { Coalminer } from '../../messaging/coalminer.js';
import { MemoryTransport } from '../../transports/memory/index.js';
import { buildSummary, formatSummary } from './messaging.js';

describe('the pair summary', () => {
  it('never says fewer were sent than arrived: in-doubt publishes that arrived count as sent', async () => {
    const t = new MemoryTransport('memory://summary-in-doubt');
    await t.connect();
    // A cold broker: nine publishes in ten time out at the client, yet reach the coalminer.
    const canary = new Canary({
      name: 'c',
      transport: deliveringButFailing(t, (seq) => seq % 10 !== 0),
      ratePerSecond: 500,
      coalminers: ['m'],
    });
    const m = new Coalminer({ name: 'm', transport: t, register: [], accept: ['c'] });
    await m.start();
    await canary.start();
    await until(() => (canary.stats().get('m')?.attempted ?? 0) >= 200, '200 pings');
    await canary.stop();
    await new Promise((r) => setTimeout(r, 100));
    m.tick();
    const s = buildSummary(t, 1, 500, m, canary.stats().get('m'));
    const raw = canary.stats().get('m')!;
    expect(raw.sent).toBeLessThan(raw.attempted / 5); // the canary's own view: most failed
    expect(s.received).toBe(raw.attempted);
    expect(s.sent).toBeGreaterThanOrEqual(s.received);
    expect(s.sent).toBe(raw.attempted);
    expect(s.sendFailed).toBe(0);
    expect(s.sendFailedArrived).toBe(raw.failed);
    expect(s).toMatchObject({ lost: 0, droppedLocally: 0, negativeLatency: 0 });
    const text = formatSummary('pair', s);
    expect(text).toContain(`sent ${raw.attempted}  received ${raw.attempted}`);
    expect(text).toContain(
      `${raw.failed} more reported failed but arrived (in-doubt publishes, counted as sent)`,
    );
    expect(text).toContain('dropped by this coalminer 0');
    await m.stop();
    await t.close();
  });

  it('states the rate achieved over the span the due pings cover, and says when it was not reached', async () => {
    const t = new MemoryTransport('memory://summary-rate');
    await t.connect();
    const canary = new Canary({ name: 'c', transport: t, ratePerSecond: 1000, coalminers: ['m'] });
    const m = new Coalminer({ name: 'm', transport: t, register: [], accept: ['c'] });
    await m.start();
    await canary.start();
    await until(() => (canary.stats().get('m')?.attempted ?? 0) >= 100, '100 pings');
    await canary.stop();
    m.tick();
    const stats = canary.stats().get('m')!;
    // Whatever the canary's own clock did, the rate is the attempted share of the due pings at the asked
    // rate, not attempts over a span that started later than `due` started counting.
    const behind = { ...stats, due: stats.attempted * 2, behind: stats.attempted };
    const s = buildSummary(t, 0.1, 1000, m, behind);
    expect(s.achievedRate).toBe(500);
    expect(s.rateReached).toBe(false);
    expect(formatSummary('pair', s)).toContain('rate not reached: attempted 500/s of the 1000/s asked');
    const kept = buildSummary(t, 123, 1000, m, { ...stats, due: stats.attempted, behind: 0 });
    expect(kept.achievedRate).toBe(1000);
    expect(kept.rateReached).toBe(true);
    await m.stop();
    await t.close();
  });
});
