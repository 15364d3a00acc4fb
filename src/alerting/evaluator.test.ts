import { describe, expect, it } from 'vitest';
import {
  RuleEvaluator,
  TRANSITION_HISTORY,
  type AlertNotification,
  type AlertTransition,
} from './evaluator.js';
import { alertingConfigSchema, type AlertRule } from './rules.js';

const STEP = 15_000;

function rule(raw: Record<string, unknown>): AlertRule {
  return alertingConfigSchema.parse({ rules: [{ name: 'r', target: 'web', ...raw }] }).rules[0]!;
}

interface Step {
  at: number;
  transitions: AlertTransition[];
  notifications: AlertNotification[];
}

/** Feeds one value per evaluation (null: no data), 15 s apart from t = 0, and records what each one did. */
function run(r: AlertRule, series: (number | null)[], start = 0): Step[] {
  let now = start;
  const ev = new RuleEvaluator([r], { now: () => now });
  return series.map((v, i) => {
    now = start + i * STEP;
    const transitions = ev.evaluate(() => (v === null ? undefined : { value: v }));
    return { at: now, transitions, notifications: ev.notifications() };
  });
}

/** The evaluation indexes at which notifications of a state were sent. */
const sentAt = (steps: Step[], state: 'firing' | 'resolved') =>
  steps.flatMap((s, i) => s.notifications.filter((n) => n.state === state).map(() => i));

const statesOf = (steps: Step[]) => steps.map((s) => s.transitions.map((t) => t.to).join('>') || '-');

describe('RuleEvaluator', () => {
  it('fires when the 2nd of the last 3 datapoints breaches and resolves when fewer than 2 do', () => {
    const r = rule({ condition: { latency: { percentile: 95, above: 0.5 } }, datapoints: { m: 2, n: 3 } });
    //                      0    1    2    3    4    5    6    7    8
    const steps = run(r, [0.1, 0.9, 0.1, 0.9, 0.9, 0.1, 0.1, 0.1, 0.9]);
    expect(statesOf(steps)).toEqual(['-', '-', '-', 'firing', '-', '-', 'resolved', 'ok', '-']);
    expect(steps[3]!.notifications).toEqual([
      {
        rule: 'r',
        state: 'firing',
        value: 0.9,
        startsAt: 3 * STEP,
        labels: { alertname: 'r', target: 'web' },
        annotations: {},
        breaching: 2,
      },
    ]);
    expect(steps[6]!.notifications).toEqual([
      {
        rule: 'r',
        state: 'resolved',
        value: 0.1,
        startsAt: 3 * STEP,
        endsAt: 6 * STEP,
        labels: { alertname: 'r', target: 'web' },
        annotations: {},
        breaching: 1,
      },
    ]);
    expect(sentAt(steps, 'firing')).toEqual([3]);
    expect(sentAt(steps, 'resolved')).toEqual([6]);
  });

  it('holds a breach in pending for `for: 1m`, then fires at the evaluation 60 s later', () => {
    const r = rule({ condition: { errorRate: { above: 0.1 } }, for: '1m' });
    const steps = run(r, [0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0]);
    expect(statesOf(steps)).toEqual(['-', 'pending', '-', '-', '-', 'firing', '-', 'resolved']);
    expect(sentAt(steps, 'firing')).toEqual([5]);
    // startsAt is when the alert became active (pending), as Prometheus' activeAt.
    expect(steps[5]!.notifications[0]).toMatchObject({ startsAt: STEP, value: 0.5 });
    expect(steps.slice(0, 5).every((s) => s.notifications.length === 0)).toBe(true);
  });

  it('goes back to ok without a notification when a pending breach stops before `for`', () => {
    const r = rule({ condition: { errorRate: { above: 0.1 } }, for: '1m' });
    const steps = run(r, [0.5, 0.5, 0.5, 0.5, 0, 0.5, 0.5, 0.5, 0.5, 0.5]);
    expect(statesOf(steps)).toEqual(['pending', '-', '-', '-', 'ok', 'pending', '-', '-', '-', 'firing']);
    expect(sentAt(steps, 'firing')).toEqual([9]);
    expect(steps[9]!.notifications[0]!.startsAt).toBe(5 * STEP);
  });

  it('fires noData when data stops for the duration and resolves when it returns', () => {
    const r = rule({ condition: { noData: { for: '1m' } } });
    // Data at 0..45 s, none from 60 s: the silence reaches 60 s at 105 s (evaluation 7).
    const d = 1;
    const steps = run(r, [d, d, d, d, null, null, null, null, null, d, d]);
    expect(statesOf(steps)).toEqual(['-', '-', '-', '-', '-', '-', '-', 'firing', '-', 'resolved', 'ok']);
    expect(steps[7]!.notifications).toMatchObject([{ state: 'firing', value: 60, startsAt: 7 * STEP }]);
    expect(steps[9]!.notifications).toMatchObject([{ state: 'resolved', value: 0, endsAt: 9 * STEP }]);
  });

  it('fires noData for a subject that never sends anything', () => {
    const r = rule({ condition: { noData: { for: '30s' } } });
    const steps = run(r, [null, null, null, null]);
    expect(sentAt(steps, 'firing')).toEqual([2]);
  });

  describe('missing data', () => {
    const series = [1, null, null, 0];
    const latched = [0, null, null, 1, null];
    const cases = {
      breaching: { series: ['firing', '-', '-', 'resolved'], latched: ['-', 'firing', '-', '-', '-'] },
      notBreaching: {
        series: ['firing', 'resolved', 'ok', '-'],
        latched: ['-', '-', '-', 'firing', 'resolved'],
      },
      ignore: { series: ['firing', '-', '-', 'resolved'], latched: ['-', '-', '-', 'firing', '-'] },
    } as const;
    for (const [policy, want] of Object.entries(cases)) {
      it(`${policy}: missing datapoints count as the policy says`, () => {
        const r = rule({ condition: { errorRate: { above: 0.5 } }, missingData: policy });
        expect(statesOf(run(r, series))).toEqual(want.series);
        expect(statesOf(run(r, latched))).toEqual(want.latched);
      });
    }

    it('ignore leaves missing datapoints out of the M-of-N window', () => {
      const series = [1, null, null, 1];
      const of = (missingData: string) =>
        sentAt(
          run(
            rule({ condition: { errorRate: { above: 0.5 } }, datapoints: { m: 2, n: 3 }, missingData }),
            series,
          ),
          'firing',
        );
      expect(of('ignore')).toEqual([3]); // window [breach, breach]
      expect(of('notBreaching')).toEqual([]); // window [ok, ok, breach]
      expect(of('breaching')).toEqual([1]); // window [breach, breach]
    });
  });

  it('re-notifies every repeatInterval while firing, with the same startsAt', () => {
    const r = rule({ condition: { errorRate: { above: 0.1 } }, repeatInterval: '1m' });
    const steps = run(r, [...Array<number>(10).fill(1), 0]);
    expect(sentAt(steps, 'firing')).toEqual([0, 4, 8]);
    expect(sentAt(steps, 'resolved')).toEqual([10]);
    expect(new Set(steps.flatMap((s) => s.notifications.map((n) => n.startsAt)))).toEqual(new Set([0]));
  });

  it('sends one notification per transition, however long the alert lasts', () => {
    const r = rule({ condition: { errorRate: { above: 0.1 } } });
    const steps = run(r, [...Array<number>(50).fill(1), ...Array<number>(50).fill(0)]);
    expect(steps.flatMap((s) => s.notifications).map((n) => n.state)).toEqual(['firing', 'resolved']);
  });

  it('drains notifications once', () => {
    let now = 0;
    const ev = new RuleEvaluator([rule({ condition: { errorRate: { above: 0.1 } } })], { now: () => now });
    ev.evaluate(() => ({ value: 1 }));
    expect(ev.notifications()).toHaveLength(1);
    expect(ev.notifications()).toEqual([]);
    now += STEP;
    ev.evaluate(() => ({ value: 1 }));
    expect(ev.notifications()).toEqual([]);
  });

  it('evaluates each rule only when its evaluateEvery is due', () => {
    let now = 0;
    const fast = rule({ name: 'fast', condition: { errorRate: { above: 0.1 } } });
    const slow = rule({ name: 'slow', condition: { errorRate: { above: 0.1 } }, evaluateEvery: '1m' });
    const ev = new RuleEvaluator([fast, slow], { now: () => now });
    const asked: string[] = [];
    for (let i = 0; i < 9; i++, now += STEP) ev.evaluate((r) => (asked.push(r.name), { value: 0 }));
    expect(asked.filter((n) => n === 'fast')).toHaveLength(9);
    expect(asked.filter((n) => n === 'slow')).toHaveLength(3); // at 0, 60 s and 120 s
  });

  it('labels a flow alert with its canary, coalminer and the rule labels and annotations', () => {
    const now = 0;
    const r = alertingConfigSchema.parse({
      rules: [
        {
          name: 'eu-loss',
          flow: { canary: 'canary-us', coalminer: 'eu-west' },
          condition: { lossRatio: { above: 0.01 } },
          labels: { severity: 'page' },
          annotations: { summary: 'pings lost to eu-west' },
        },
      ],
    }).rules[0]!;
    const ev = new RuleEvaluator([r], { now: () => now });
    ev.evaluate(() => ({ value: 0.2 }));
    expect(ev.notifications()).toEqual([
      {
        rule: 'eu-loss',
        state: 'firing',
        value: 0.2,
        startsAt: 0,
        labels: { alertname: 'eu-loss', canary: 'canary-us', coalminer: 'eu-west', severity: 'page' },
        annotations: { summary: 'pings lost to eu-west' },
        breaching: 1,
      },
    ]);
    expect(ev.status()).toEqual([
      { rule: 'eu-loss', state: 'firing', activeSince: 0, lastEvaluatedAt: 0, lastValue: 0.2 },
    ]);
  });

  it('judges certificate expiry by days left and probe failure by any failure', () => {
    const cert = rule({ condition: { certExpiringWithin: { days: 14 } } });
    expect(statesOf(run(cert, [30, 14, 13.5, 20]))).toEqual(['-', '-', 'firing', 'resolved']);
    const failing = rule({ condition: { probeFailing: {} } });
    expect(statesOf(run(failing, [0, 1, 0]))).toEqual(['-', 'firing', 'resolved']);
  });

  it('keeps a bounded transition history per rule', () => {
    const r = rule({ condition: { errorRate: { above: 0.1 } } });
    let now = 0;
    const ev = new RuleEvaluator([r], { now: () => now });
    for (let i = 0; i < 500; i++, now += STEP) ev.evaluate(() => ({ value: i % 2 }));
    const h = ev.history('r');
    expect(h).toHaveLength(TRANSITION_HISTORY);
    expect(h.at(-1)!.at).toBe(499 * STEP);
    expect(ev.history('nope')).toEqual([]);
  });
});

describe('RuleEvaluator.restoreHistory', () => {
  it('puts stored transitions before new ones, bounded; a rule that ended resolved starts ok', () => {
    let now = 1000;
    const r = alertingConfigSchema.parse({
      rules: [{ name: 'r', target: 't', condition: { probeFailing: {} }, evaluateEvery: '1s' }],
    }).rules[0]!;
    const ev = new RuleEvaluator([r], { now: () => now });
    const stored = Array.from({ length: TRANSITION_HISTORY + 6 }, (_, i) => ({
      rule: 'r',
      from: i % 2 ? ('firing' as const) : ('ok' as const),
      to: i % 2 ? ('resolved' as const) : ('firing' as const),
      at: i,
      value: 1,
    }));
    expect(
      ev.restoreHistory([...stored, { rule: 'gone', from: 'ok', to: 'firing', at: 5, value: 1 }]),
    ).toEqual([]);
    expect(ev.status()[0]!.state).toBe('ok');
    ev.evaluate(() => ({ value: 1 }));
    now += 1000;
    const h = ev.history('r');
    expect(h).toHaveLength(TRANSITION_HISTORY);
    expect(h.at(-1)).toMatchObject({ from: 'ok', to: 'firing', at: 1000 });
    expect(h[0]!.at).toBe(7);
  });

  /** Runs `before`, "restarts" (a new evaluator fed the first one's history), then runs `after`. */
  function restart(r: AlertRule, before: (number | null)[], after: (number | null)[]) {
    const first = run(r, before);
    const history = first.flatMap((s) => s.transitions);
    let now = before.length * STEP;
    const ev = new RuleEvaluator([r], { now: () => now });
    const restored = ev.restoreHistory(history);
    const status = ev.status()[0]!;
    const second = after.map((v, i) => {
      now = (before.length + i) * STEP;
      const transitions = ev.evaluate(() => (v === null ? undefined : { value: v }));
      return { at: now, transitions, notifications: ev.notifications() };
    });
    return { first, restored, status, second };
  }

  it('takes up a firing rule where it was: no second firing notice, and the resolve notice comes', () => {
    const r = rule({ condition: { latency: { percentile: 95, above: 0.5 } }, datapoints: { m: 2, n: 3 } });
    const series = [0.1, 0.9, 0.1, 0.9, 0.9, 0.1, 0.1];
    const { first, restored, status, second } = restart(r, series.slice(0, 4), series.slice(4));
    expect(sentAt(first, 'firing')).toEqual([3]);
    expect(status).toMatchObject({ state: 'firing', activeSince: 3 * STEP, lastValue: 0.9 });
    expect(restored).toEqual([expect.objectContaining({ rule: 'r', state: 'firing', startsAt: 3 * STEP })]);
    // The same as a run without the restart: still firing at 0.9 and the first 0.1, resolved at the second.
    const continuous = run(r, series);
    expect(statesOf(second)).toEqual(statesOf(continuous).slice(4));
    expect(sentAt(second, 'firing')).toEqual([]);
    expect(second[2]!.notifications).toEqual([
      expect.objectContaining({ state: 'resolved', startsAt: 3 * STEP, endsAt: 6 * STEP, value: 0.1 }),
    ]);
  });

  it('keeps a pending rule counting its for duration from when it began', () => {
    const r = rule({ condition: { errorRate: { above: 0.1 } }, for: '30s' });
    // Pending from evaluation 1; 30 s later (evaluation 3) it fires, restart or not.
    const { status, second } = restart(r, [0, 1], [1, 1, 1]);
    expect(status).toMatchObject({ state: 'pending', activeSince: STEP });
    expect(statesOf(second)).toEqual(['-', 'firing', '-']);
    expect(second[1]!.notifications).toEqual([expect.objectContaining({ state: 'firing', startsAt: STEP })]);
  });

  it('keeps a no-data rule firing until data arrives', () => {
    const r = rule({ condition: { noData: { for: '30s' } } });
    const { status, second } = restart(r, [1, null, null, null], [null, null, 1]);
    expect(status.state).toBe('firing');
    expect(statesOf(second)).toEqual(['-', '-', 'resolved']);
  });
});
