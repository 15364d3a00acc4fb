import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { AlertHistoryEntry } from './types.js';
import type { Observation } from '../core/types.js';
import { emptyCounts, type SequenceCounts } from '../messaging/sequence.js';
import { AlertEngine, type AlertPersistence, type StoredAlertEvent } from './engine.js';
import type { FlowCountsSource, TargetTiming } from './inputs.js';
import type { AlertNotification, Notifier } from './notifiers/types.js';
import { alertingConfigSchema } from './rules.js';
import { ALERTMANAGER_RESEND_MS } from './notifiers/alertmanager.js';

const STEP = 10_000;

function recorder(kind = 'webhook'): Notifier & { got: AlertNotification[] } {
  const got: AlertNotification[] = [];
  return {
    kind,
    got,
    send: (n) => {
      got.push(n);
      return Promise.resolve();
    },
  };
}

function probe(name: string, ok: boolean, seconds: number, values?: Record<string, number>): Observation {
  const durationNs = BigInt(Math.round(seconds * 1e9));
  return {
    name,
    kind: 'tcp',
    target: '127.0.0.1:1',
    startedAtMs: 0,
    result: ok
      ? { ok: true, durationNs, phases: {}, ...(values && { values }) }
      : { ok: false, durationNs, phases: {}, error: { code: 'refused', message: 'refused' } },
  };
}

function setup(alerting: unknown, flows: FlowCountsSource[] = [], targets?: TargetTiming[]) {
  let now = 1_700_000_000_000;
  const config = alertingConfigSchema.parse(alerting);
  const notifiers = new Map(
    config.notifiers.map((n) => [n.name, recorder(n.alertmanager ? 'alertmanager' : 'webhook')]),
  );
  const events: AlertHistoryEntry[] = [];
  const registry = new Registry();
  const engine = new AlertEngine(config, {
    now: () => now,
    timer: false,
    registry,
    notifiers,
    flowCounts: () => flows,
    ...(targets && { targets }),
    onTransition: (e) => events.push(e),
  });
  engine.setDashboardUrl('http://127.0.0.1:9777/');
  return {
    engine,
    notifiers,
    events,
    registry,
    advance: (ms = STEP) => (now += ms),
    now: () => now,
  };
}

const hook = { name: 'hook', webhook: { url: 'http://127.0.0.1:1/', secret: 'a-secret-of-16-chars' } };

/**
 * A target probed every `probeEveryS` (each result in 0.3 s after its slot), whose runs fail from 60 s
 * for `downS`, with the engine offered an evaluation every simulated 0.1 s (it evaluates the rule when
 * it is due), for `totalS`; returns the notices sent, when (s from the start) and every state change.
 */
async function outage(
  rule: Record<string, unknown>,
  o: { probeEveryS: number; downS: number; totalS: number; reports?: (s: number) => boolean },
): Promise<{ states: string[]; at: number[]; moves: string[] }> {
  const t = setup(
    { notifiers: [hook], rules: [{ name: 'down', target: 'web', ...rule }] },
    [],
    [{ name: 'web', intervalMs: o.probeEveryS * 1000, timeoutMs: 1000 }],
  );
  const start = t.now();
  for (let ms = 0; ms <= o.totalS * 1000; ms += 100) {
    const s = ms / 1000;
    const slot = s - (ms % (o.probeEveryS * 1000)) / 1000;
    if (ms % (o.probeEveryS * 1000) === 300 && (o.reports?.(s) ?? true))
      t.engine.observeProbe(probe('web', !(slot >= 60 && slot < 60 + o.downS), 0.002));
    t.engine.evaluate();
    t.advance(100);
  }
  await t.engine.idle();
  const states = t.notifiers.get('hook')!.got.map((n) => n.state);
  const sent = t.events.filter((e) => e.to === 'firing' || e.to === 'resolved');
  const moves = t.events.map((e) => `${(e.at - start) / 1000}:${e.to}`);
  return { states, at: sent.map((e) => (e.at - start) / 1000), moves };
}

describe('AlertEngine: a target probed less often than its rule is evaluated', () => {
  // Before: windows without a run were missing data, which notBreaching counts as ok: firing, resolved,
  // firing... through one outage, and `for` never held long enough to fire.
  for (const [probeEveryS, every] of [
    [30, '15s'],
    [5, '2s'],
  ] as const)
    it(`probed every ${probeEveryS} s, evaluated every ${every}, down for 5 minutes: one firing, one resolve`, async () => {
      for (const condition of [{ probeFailing: {} }, { errorRate: { above: 0.5 } }]) {
        const got = await outage(
          { condition, evaluateEvery: every },
          { probeEveryS, downS: 300, totalS: 600 },
        );
        expect(got.states, JSON.stringify(condition)).toEqual(['firing', 'resolved']);
        expect(got.at[0]).toBeLessThanOrEqual(60 + probeEveryS);
        expect(got.at[1]).toBeGreaterThanOrEqual(360);
        expect(got.at[1]).toBeLessThanOrEqual(360 + probeEveryS + 15);
      }
    });

  it('fires a `for: 10s` rule on a target probed every 5 s and evaluated every 2 s', async () => {
    const got = await outage(
      { condition: { probeFailing: {} }, evaluateEvery: '2s', for: '10s' },
      { probeEveryS: 5, downS: 300, totalS: 600 },
    );
    expect(got.states).toEqual(['firing', 'resolved']);
    expect(got.at[0]).toBeGreaterThanOrEqual(70);
    expect(got.at[0]).toBeLessThanOrEqual(75);
  });

  it('carries a slow target’s latency between its runs', async () => {
    const got = await outage(
      { condition: { latency: { percentile: 95, above: 0.001 } }, evaluateEvery: '15s' },
      { probeEveryS: 30, downS: 0, totalS: 300 },
    );
    // Every run takes 2 ms: one firing notice, never resolved.
    expect(got.states).toEqual(['firing']);
  });

  it('gives a flow rule no datapoint (missingData judges) while no ping arrives, never a ratio of 0', () => {
    const counts = { ...emptyCounts(), received: 100 };
    const flows: FlowCountsSource[] = [{ canary: 'c', coalminer: 'm', runId: 'a', counts }];
    const flow = { canary: 'c', coalminer: 'm' };
    const t = setup(
      {
        rules: [
          { name: 'loss', flow, condition: { lossRatio: { above: 0.05 } }, missingData: 'breaching' },
          {
            name: 'slow',
            flow,
            condition: { latency: { percentile: 95, above: 1 } },
            missingData: 'breaching',
          },
        ],
      },
      flows,
    );
    t.engine.observeLatency('c', 'm', 0.01);
    t.engine.evaluate();
    expect(t.engine.rules().map((r) => r.state)).toEqual(['ok', 'ok']);
    // The flow goes silent: its counts stop moving and no latency comes in.
    t.advance(15_000);
    t.engine.evaluate();
    expect(t.engine.rules().map((r) => r.state)).toEqual(['firing', 'firing']);
  });

  it('counts the latest run as missing data once it is older than interval x 2 + timeout', async () => {
    // Down from 60 s, and the last result arrives at 90.3 s: carried until 90.3 + 30 x 2 + 1 = 151.3 s.
    const reports = (s: number) => s < 100;
    const policy = async (missingData: string) =>
      outage(
        { condition: { probeFailing: {} }, evaluateEvery: '15s', missingData },
        { probeEveryS: 30, downS: 300, totalS: 300, reports },
      );
    const notBreaching = await policy('notBreaching');
    expect(notBreaching.states).toEqual(['firing', 'resolved']);
    expect(notBreaching.at[1]).toBeGreaterThan(151.3);
    expect(notBreaching.at[1]).toBeLessThanOrEqual(151.3 + 15);
    // breaching: firing from the outage on, through the silence (before the first result, too).
    const b = await policy('breaching');
    expect(b.moves.filter((m) => parseFloat(m) >= 60)).toEqual(['75:firing']);
  });
});

describe('AlertEngine', () => {
  it('fires on the p95 of the runs in each window, 2 of 3, with the numbers and a link, then resolves', async () => {
    const t = setup({
      notifiers: [hook],
      rules: [
        {
          name: 'api-slow',
          target: 'api',
          condition: { latency: { percentile: 95, above: 0.1 } },
          datapoints: { m: 2, n: 3 },
          evaluateEvery: '10s',
        },
      ],
    });
    const windows = [[0.01, 0.02], [0.2, 0.3], [0.01, 0.01], [0.5, 0.4], [0.3], [0.01], [0.01]];
    const states: string[] = [];
    t.engine.evaluate(); // the first evaluation starts the first window
    for (const w of windows) {
      for (const s of w) t.engine.observeProbe(probe('api', true, s));
      t.engine.observeProbe(probe('other', true, 9)); // not this rule's target
      t.advance();
      t.engine.evaluate();
      states.push(t.engine.rules()[0]!.state);
    }
    // Last 3 outcomes: [ok B ok] [B ok B]=fire [ok B B] [B B ok] still 2 of 3, then [B ok ok] resolves.
    expect(states).toEqual(['ok', 'ok', 'ok', 'firing', 'firing', 'firing', 'resolved']);
    await t.engine.idle();
    const got = t.notifiers.get('hook')!.got as unknown as AlertNotification[];
    expect(got.map((n) => n.state)).toEqual(['firing', 'resolved']);
    expect(got[0]!.value).toBeCloseTo(0.5, 3);
    expect(got[0]!.summary).toBe(
      'target api: p95 latency > 0.1 s: 0.5 s (2 of the last 3 datapoints breached; fires at 2)',
    );
    expect(got[0]!.dashboardUrl).toBe('http://127.0.0.1:9777/#/target/api');
    expect(got[0]!.labels).toEqual({ alertname: 'api-slow', target: 'api' });
    expect(got[1]!.summary).toContain('resolved');
    expect(t.events.map((e) => `${e.from}->${e.to}`)).toEqual(['ok->firing', 'firing->resolved']);
    expect(t.engine.history('api-slow', 10).map((e) => e.to)).toEqual(['resolved', 'firing']);
    const metrics = await t.registry.metrics();
    expect(metrics).toContain('coalmine_alert_state{rule="api-slow",state="resolved"} 1');
    expect(metrics).toContain(
      'coalmine_alert_notifications_total{notifier="hook",kind="webhook",result="delivered"} 2',
    );
  });

  it('judges loss, errors and duplicates of a flow from count deltas per window, across canary runs', async () => {
    const counts = (c: Partial<SequenceCounts>): SequenceCounts => ({ ...emptyCounts(), ...c });
    const flows: FlowCountsSource[] = [];
    const t = setup(
      {
        notifiers: [hook],
        rules: [
          { name: 'loss', flow: { canary: 'c', coalminer: 'm' }, condition: { lossRatio: { above: 0.05 } } },
          {
            name: 'dups',
            flow: { canary: 'c', coalminer: 'm' },
            condition: { duplicateRatio: { above: 0.05 } },
          },
          { name: 'silent', flow: { canary: 'c', coalminer: 'm' }, condition: { noData: { for: '20s' } } },
        ],
      },
      flows,
    );
    t.engine.evaluate();
    const set = (...f: FlowCountsSource[]) => flows.splice(0, flows.length, ...f);
    // Window 1: 100 received, 10 lost (a late one counts as declared lost too), 1 duplicate.
    set({
      canary: 'c',
      coalminer: 'm',
      runId: 'a',
      counts: counts({ received: 100, lost: 9, late: 1, duplicated: 1 }),
    });
    t.advance(15_000);
    t.engine.evaluate();
    const value = (rule: string) => t.engine.rules().find((r) => r.rule === rule)!;
    expect(value('loss').lastValue).toBeCloseTo(10 / 110, 9);
    expect(value('loss').state).toBe('firing');
    expect(value('dups').lastValue).toBeCloseTo(0.01, 9);
    expect(value('dups').state).toBe('ok');
    // Window 2: the canary restarted (new run b); run a is gone. Only b's 50 count, none lost.
    set({ canary: 'c', coalminer: 'm', runId: 'b', counts: counts({ received: 50 }) });
    t.advance(15_000);
    t.engine.evaluate();
    expect(value('loss').lastValue).toBe(0);
    expect(value('loss').state).toBe('resolved');
    // Windows 3 and 4: nothing arrives.
    t.advance(15_000);
    t.engine.evaluate();
    expect(value('silent').state).toBe('ok');
    t.advance(15_000);
    t.engine.evaluate();
    expect(value('silent').state).toBe('firing');
    expect(value('silent').lastValue).toBe(30);
    await t.engine.idle();
    const summaries = t.notifiers.get('hook')!.got.map((n) => n.summary);
    expect(summaries).toContain('flow c -> m: loss > 5 %: 9.091 %');
    expect(summaries).toContain('flow c -> m: no data for 30 s');
  });

  it('mutes silenced alerts (counted), lists the silence, and notifies again once it is expired', async () => {
    const t = setup({
      notifiers: [hook],
      rules: [
        {
          name: 'down',
          target: 'db',
          condition: { probeFailing: {} },
          evaluateEvery: '10s',
          repeatInterval: '10s',
          labels: { team: 'storage' },
        },
      ],
    });
    const silence = t.engine.addSilence({
      matchers: { team: 'storage' },
      endsAt: t.now() + 3600_000,
      comment: 'maintenance',
      createdBy: 'test',
    });
    t.engine.evaluate();
    t.engine.observeProbe(probe('db', false, 0.001));
    t.advance();
    t.engine.evaluate();
    expect(t.engine.rules()[0]).toMatchObject({ state: 'firing', silencedBy: [silence.id] });
    await t.engine.idle();
    expect(t.notifiers.get('hook')!.got).toHaveLength(0);
    expect(await t.registry.metrics()).toContain(
      'coalmine_alert_notifications_silenced_total{rule="down"} 1',
    );

    expect(t.engine.expireSilence(silence.id)).toBe(true);
    expect(t.engine.expireSilence('nope')).toBe(false);
    expect(t.engine.silences()[0]).toMatchObject({ id: silence.id, active: false });
    t.engine.observeProbe(probe('db', false, 0.001));
    t.advance();
    t.engine.evaluate(); // the repeat interval has passed: a repeat goes out now
    await t.engine.idle();
    expect(t.notifiers.get('hook')!.got.map((n) => n.state)).toEqual(['firing']);
    expect(t.engine.rules()[0]!.silencedBy).toEqual([]);
  });

  it('sends only to the notifiers a rule names, and re-sends firing alerts to Alertmanager every minute', async () => {
    const t = setup({
      notifiers: [hook, { name: 'am', alertmanager: { url: 'http://127.0.0.1:9093' } }],
      rules: [
        { name: 'a', target: 't', condition: { probeFailing: {} }, notify: ['am'], evaluateEvery: '10s' },
      ],
    });
    t.engine.evaluate();
    for (let i = 0; i < 13; i++) {
      t.engine.observeProbe(probe('t', false, 0.001));
      t.advance();
      t.engine.evaluate();
    }
    await t.engine.idle();
    expect(t.notifiers.get('hook')!.got).toHaveLength(0);
    // One firing at 10 s, then re-sends 60 s and 120 s later (130 s in all).
    expect(t.notifiers.get('am')!.got).toHaveLength(1 + Math.floor(120_000 / ALERTMANAGER_RESEND_MS));
  });

  it('never waits for a notifier: a hanging one does not hold up evaluation or the other notifiers', async () => {
    const config = alertingConfigSchema.parse({
      notifiers: [hook, { ...hook, name: 'stuck' }],
      rules: [{ name: 'r', target: 't', condition: { probeFailing: {} }, evaluateEvery: '10s' }],
    });
    let now = 0;
    const good = recorder();
    const stuck: Notifier = { kind: 'webhook', send: () => new Promise(() => {}) };
    const engine = new AlertEngine(config, {
      now: () => now,
      timer: false,
      flowCounts: () => [],
      notifiers: new Map([
        ['hook', good],
        ['stuck', stuck],
      ]),
      queue: { attemptTimeoutMs: 60_000 },
    });
    engine.evaluate();
    engine.observeProbe(probe('t', false, 0.001));
    now += 10_000;
    const t0 = performance.now();
    engine.evaluate();
    expect(performance.now() - t0).toBeLessThan(20);
    await new Promise((r) => setTimeout(r, 20));
    expect(good.got).toHaveLength(1);
    expect(engine.notifierStats().stuck!.delivered).toBe(0);
    const t1 = performance.now();
    await engine.close(50);
    expect(performance.now() - t1).toBeLessThan(1000);
  });

  it('restores history and silences from a store after a restart, and writes new ones there', async () => {
    const events: StoredAlertEvent[] = [
      { rule: 'down', from: 'ok', to: 'firing', at: 1, value: 1 },
      { rule: 'down', from: 'firing', to: 'resolved', at: 2, value: 0 },
      { rule: 'down', from: 'ok', to: 'bogus', at: 3, value: null },
    ];
    const saved: Parameters<AlertPersistence['saveSilence']>[0][] = [];
    const store: AlertPersistence = {
      writeAlertEvents: (e) => {
        events.push(...e);
        return Promise.resolve();
      },
      alertEvents: () => Promise.resolve([...events]),
      saveSilence: (s) => {
        saved.push(s);
        return Promise.resolve();
      },
      silences: () => Promise.resolve(saved.map((s) => ({ ...s }))),
    };
    const alerting = {
      notifiers: [hook],
      rules: [{ name: 'down', target: 'db', condition: { probeFailing: {} }, evaluateEvery: '10s' }],
    };
    const first = setup(alerting);
    await first.engine.restore(store);
    const s = first.engine.addSilence({
      matchers: { alertname: 'down' },
      endsAt: first.now() + 3600_000,
      comment: 'upgrade',
      createdBy: 'ops',
    });
    await first.engine.close();

    const second = setup(alerting);
    await second.engine.restore(store);
    expect(second.engine.silences().map((x) => x.id)).toEqual([s.id]);
    expect(second.engine.history('down', 10).map((e) => e.to)).toEqual(['resolved', 'firing']);
    second.engine.evaluate();
    second.engine.observeProbe(probe('db', false, 0.001));
    second.advance();
    second.engine.evaluate();
    expect(second.engine.rules()[0]).toMatchObject({ state: 'firing', silencedBy: [s.id] });
    await second.engine.idle();
    expect(second.notifiers.get('hook')!.got).toHaveLength(0);
    expect(events.at(-1)).toMatchObject({ rule: 'down', from: 'ok', to: 'firing', value: 1 });
    second.engine.expireSilence(s.id);
    expect(saved.at(-1)).toMatchObject({ id: s.id, endsAt: second.now() });
  });

  it('takes up a rule that was firing before a restart: no second notice, Alertmanager told again', async () => {
    const events: StoredAlertEvent[] = [];
    const store: AlertPersistence = {
      writeAlertEvents: (e) => {
        events.push(...e);
        return Promise.resolve();
      },
      alertEvents: () => Promise.resolve([...events]),
      saveSilence: () => Promise.resolve(),
      silences: () => Promise.resolve([]),
    };
    const alerting = {
      notifiers: [hook, { name: 'am', alertmanager: { url: 'http://127.0.0.1:1/' } }],
      rules: [{ name: 'down', target: 'db', condition: { probeFailing: {} }, evaluateEvery: '10s' }],
    };
    const first = setup(alerting);
    await first.engine.restore(store);
    first.engine.evaluate();
    first.engine.observeProbe(probe('db', false, 0.001));
    first.advance();
    first.engine.evaluate();
    await first.engine.idle();
    expect(first.notifiers.get('hook')!.got.map((n) => n.state)).toEqual(['firing']);
    const firedAt = first.now();
    await first.engine.close();

    const second = setup(alerting);
    second.advance(5 * 60_000); // down for five minutes: Alertmanager has resolved it by now
    await second.engine.restore(store);
    expect(second.engine.rules()[0]).toMatchObject({ state: 'firing', activeSince: firedAt });
    second.engine.evaluate(); // still failing: the first window has no run yet, and 1 of 1 is kept
    second.engine.observeProbe(probe('db', false, 0.001));
    second.advance();
    second.engine.evaluate();
    await second.engine.idle();
    expect(second.notifiers.get('hook')!.got).toEqual([]);
    // Alertmanager hears of it at once, with its original start.
    expect(second.notifiers.get('am')!.got).toEqual([
      expect.objectContaining({ rule: 'down', state: 'firing', startsAt: firedAt }),
    ]);
    second.engine.observeProbe(probe('db', true, 0.001));
    second.advance();
    second.engine.evaluate();
    await second.engine.idle();
    expect(second.notifiers.get('hook')!.got).toEqual([
      expect.objectContaining({ state: 'resolved', startsAt: firedAt, endsAt: second.now() }),
    ]);
    expect(events.map((e) => `${e.from}->${e.to}`)).toEqual(['ok->firing', 'firing->resolved']);
  });

  it('keeps evaluating when the store fails to take history', async () => {
    const failing: AlertPersistence = {
      writeAlertEvents: () => Promise.reject(new Error('disk full')),
      alertEvents: () => Promise.resolve([]),
      saveSilence: () => Promise.reject(new Error('disk full')),
      silences: () => Promise.resolve([]),
    };
    const t = setup({
      rules: [{ name: 'r', target: 't', condition: { probeFailing: {} }, evaluateEvery: '10s' }],
    });
    await t.engine.restore(failing);
    t.engine.evaluate();
    t.engine.observeProbe(probe('t', false, 0.001));
    t.advance();
    expect(t.engine.evaluate().map((x) => x.to)).toEqual(['firing']);
    t.engine.addSilence({
      matchers: { alertname: 'r' },
      endsAt: t.now() + 1000,
      comment: '',
      createdBy: 'x',
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(t.engine.rules()[0]!.state).toBe('firing');
  });
});
