import { alertLabels, type AlertRule, type Condition } from './rules.js';

/** A rule's value over its last evaluation window; undefined when there was no data. */
export type DataPoint = { value: number } | undefined;

export type AlertState = 'ok' | 'pending' | 'firing' | 'resolved';

export interface AlertTransition {
  rule: string;
  from: AlertState;
  to: AlertState;
  at: number;
  value: number | undefined;
}

export interface AlertNotification {
  rule: string;
  state: 'firing' | 'resolved';
  /** The value at the evaluation that sent this; undefined when that evaluation had no data. */
  value: number | undefined;
  /** When the alert became active, pending included, as Prometheus' `activeAt` (ms since the epoch). */
  startsAt: number;
  /** Set on a resolve notice: when it resolved. */
  endsAt?: number;
  /** `alertname`, the subject (`target`, or `canary` and `coalminer`), then the rule's own labels. */
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** How many of the rule's last n datapoints breached at that evaluation. */
  breaching: number;
}

export interface RuleStatus {
  rule: string;
  state: AlertState;
  /** When the current pending or firing period began. */
  activeSince?: number;
  lastEvaluatedAt?: number;
  lastValue?: number;
}

/** How many transitions each rule remembers, for the API's history. */
export const TRANSITION_HISTORY = 50;

type Outcome = 'breach' | 'ok';

interface RuleRuntime {
  rule: AlertRule;
  state: AlertState;
  /** The last n counted outcomes, oldest first; never longer than n. */
  window: Outcome[];
  nextDueAt?: number;
  lastEvaluatedAt?: number;
  lastValue?: number;
  activeSince?: number;
  lastNotifiedAt?: number;
  /** noData: when data was last seen (or when watching began). */
  lastDataAt?: number;
  transitions: AlertTransition[];
  /**
   * Restored pending or firing: the first evaluation after a restart covers next to no time, so having
   * no data then says nothing and must not end the alert whatever the missing-data policy.
   */
  restored?: boolean;
}

/** Whether one value breaches a condition (noData is judged from time, not values). */
export function breaches(condition: Condition, value: number): boolean {
  switch (condition.kind) {
    case 'latency':
    case 'lossRatio':
    case 'duplicateRatio':
    case 'reorderRatio':
    case 'errorRate':
      return value > condition.above;
    case 'probeFailing':
      // The value is the share (or count) of failed runs in the window; any failure breaches.
      return value > 0;
    case 'certExpiringWithin':
      // The value is the days left before the certificate expires.
      return value < condition.days;
    case 'noData':
      return false;
  }
}

/**
 * Evaluates alert rules against datapoints it is handed, with an injected clock: no timers, no I/O.
 * Each rule is evaluated at most once per `evaluateEvery`; M-of-N is counted over its last N
 * evaluations; `for` holds a breach in pending until it has lasted that long; notifications are
 * queued once per transition (plus repeats) and drained with `notifications()`.
 */
export class RuleEvaluator {
  readonly #now: () => number;
  readonly #rules: RuleRuntime[];
  #outbox: AlertNotification[] = [];

  constructor(rules: readonly AlertRule[], opts: { now: () => number }) {
    this.#now = opts.now;
    this.#rules = rules.map((rule) => ({ rule, state: 'ok', window: [], transitions: [] }));
  }

  /** Evaluates every rule that is due; returns the state transitions this made. */
  evaluate(data: (rule: AlertRule) => DataPoint): AlertTransition[] {
    const now = this.#now();
    const out: AlertTransition[] = [];
    for (const rt of this.#rules) {
      if (rt.nextDueAt !== undefined && now < rt.nextDueAt) continue;
      // Fixed slots: a late evaluation does not push every later one back.
      const every = rt.rule.evaluateEveryMs;
      rt.nextDueAt = rt.nextDueAt === undefined ? now + every : rt.nextDueAt + every;
      if (rt.nextDueAt <= now) rt.nextDueAt = now + every;
      rt.lastEvaluatedAt = now;
      const point = data(rt.rule);
      const t = this.#step(rt, now, point);
      out.push(...t);
    }
    return out;
  }

  /** When the next rule is due (ms, on the injected clock); undefined before the first evaluate(). */
  nextDueAt(): number | undefined {
    let next: number | undefined;
    for (const rt of this.#rules) {
      if (rt.nextDueAt === undefined) return undefined;
      if (next === undefined || rt.nextDueAt < next) next = rt.nextDueAt;
    }
    return next;
  }

  /** Drains the notifications queued since the last call. */
  notifications(): AlertNotification[] {
    const out = this.#outbox;
    this.#outbox = [];
    return out;
  }

  status(): RuleStatus[] {
    return this.#rules.map((rt) => ({
      rule: rt.rule.name,
      state: rt.state,
      ...(rt.activeSince !== undefined && { activeSince: rt.activeSince }),
      ...(rt.lastEvaluatedAt !== undefined && { lastEvaluatedAt: rt.lastEvaluatedAt }),
      ...(rt.lastValue !== undefined && { lastValue: rt.lastValue }),
    }));
  }

  /**
   * Puts earlier transitions (from a store, after a restart) before the ones this evaluator made, so
   * history() shows them, and takes up where the previous run left each rule: one whose newest stored
   * transition left it pending or firing is pending or firing again, with the same start, so a restart
   * neither sends a second firing notice nor forgets a resolve notice. Its window is seeded with the
   * fewest breaches that keep it active (M of them): what comes next decides, as it would have.
   * Returns the notifications of the rules restored as firing (for re-sends to Alertmanager). Call it
   * before the first evaluate(); unknown rules are ignored.
   */
  restoreHistory(transitions: readonly AlertTransition[]): AlertNotification[] {
    const firing: AlertNotification[] = [];
    for (const rt of this.#rules) {
      const earlier = transitions.filter((t) => t.rule === rt.rule.name).sort((a, b) => a.at - b.at);
      rt.transitions = [...earlier, ...rt.transitions].slice(-TRANSITION_HISTORY);
      const last = earlier.at(-1);
      if (rt.lastEvaluatedAt !== undefined || (last?.to !== 'pending' && last?.to !== 'firing')) continue;
      // The period began at the newest move out of ok (pending, or straight to firing).
      const began = earlier.findLast((t) => t.from === 'ok' || t.from === 'resolved') ?? last;
      rt.state = last.to;
      rt.activeSince = began.at;
      if (last.value !== undefined) rt.lastValue = last.value;
      rt.window = Array<Outcome>(rt.rule.datapoints.m).fill('breach');
      rt.restored = true;
      // noData: still silent as far as we know, until data arrives.
      if (rt.rule.condition.kind === 'noData') rt.lastDataAt = this.#now() - rt.rule.condition.forMs;
      if (last.to === 'firing') {
        rt.lastNotifiedAt = last.at;
        firing.push(this.#notification(rt, 'firing', last.value, last.at));
      }
    }
    return firing;
  }

  /** The rule's most recent transitions, oldest first (at most TRANSITION_HISTORY). */
  history(ruleName: string): AlertTransition[] {
    return [...(this.#rules.find((rt) => rt.rule.name === ruleName)?.transitions ?? [])];
  }

  #step(rt: RuleRuntime, now: number, point: DataPoint): AlertTransition[] {
    const { rule } = rt;
    const transitions: AlertTransition[] = [];
    let value = point?.value;
    const move = (to: AlertState) => {
      const t: AlertTransition = { rule: rule.name, from: rt.state, to, at: now, value };
      rt.state = to;
      rt.transitions.push(t);
      if (rt.transitions.length > TRANSITION_HISTORY) rt.transitions.shift();
      transitions.push(t);
    };

    // A resolve notice lasts one evaluation.
    if (rt.state === 'resolved') move('ok');

    let outcome: Outcome | undefined;
    if (rule.condition.kind === 'noData') {
      rt.lastDataAt ??= now;
      if (point) rt.lastDataAt = now;
      const silentMs = now - rt.lastDataAt;
      value = silentMs / 1000;
      outcome = silentMs >= rule.condition.forMs ? 'breach' : 'ok';
    } else if (point) {
      outcome = breaches(rule.condition, point.value) ? 'breach' : 'ok';
    } else if (rt.restored) {
      // See RuleRuntime.restored: as if 'ignore', this once.
    } else if (rule.missingData === 'breaching') outcome = 'breach';
    else if (rule.missingData === 'notBreaching') outcome = 'ok';
    // 'ignore': the datapoint does not enter the window and the state stays as it is.
    rt.restored = false;
    if (value !== undefined) rt.lastValue = value;

    if (outcome !== undefined) {
      rt.window.push(outcome);
      if (rt.window.length > rule.datapoints.n) rt.window.shift();
      const breaching = rt.window.filter((o) => o === 'breach').length >= rule.datapoints.m;

      if (breaching) {
        if (rt.state === 'ok') {
          rt.activeSince = now;
          if (rule.forMs > 0) move('pending');
          else {
            move('firing');
            this.#notify(rt, now, 'firing', value);
          }
        } else if (rt.state === 'pending' && now - rt.activeSince! >= rule.forMs) {
          move('firing');
          this.#notify(rt, now, 'firing', value);
        }
      } else if (rt.state === 'pending') {
        rt.activeSince = undefined;
        move('ok');
      } else if (rt.state === 'firing') {
        move('resolved');
        this.#notify(rt, now, 'resolved', value);
        rt.activeSince = undefined;
        return transitions;
      }
    }

    const repeat = rule.repeatIntervalMs;
    if (
      rt.state === 'firing' &&
      repeat !== undefined &&
      repeat > 0 &&
      rt.lastNotifiedAt !== undefined &&
      now - rt.lastNotifiedAt >= repeat
    )
      this.#notify(rt, now, 'firing', value);
    return transitions;
  }

  #notify(rt: RuleRuntime, now: number, state: 'firing' | 'resolved', value: number | undefined) {
    this.#outbox.push(this.#notification(rt, state, value, now));
    rt.lastNotifiedAt = now;
  }

  #notification(
    rt: RuleRuntime,
    state: 'firing' | 'resolved',
    value: number | undefined,
    now: number,
  ): AlertNotification {
    const { rule } = rt;
    return {
      rule: rule.name,
      state,
      value,
      startsAt: rt.activeSince!,
      ...(state === 'resolved' && { endsAt: now }),
      labels: alertLabels(rule),
      annotations: { ...rule.annotations },
      breaching: rt.window.filter((o) => o === 'breach').length,
    };
  }
}
