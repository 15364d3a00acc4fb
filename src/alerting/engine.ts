import { randomUUID } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AlertControl, AlertHistoryEntry, AlertRuleStatus, Silence } from './types.js';
import { silentLogger, type Logger } from '../core/log.js';
import { beforeFirst } from '../core/text.js';
import type { Observation } from '../core/types.js';
import { describeCondition, summarize } from './describe.js';
import {
  RuleEvaluator,
  TRANSITION_HISTORY,
  type AlertNotification as Evaluated,
  type AlertState,
  type AlertTransition,
} from './evaluator.js';
import { AlertInputs, type FlowCountsSource, type TargetTiming } from './inputs.js';
import { createNotifier, notifierKind, resendFiringMs } from './notifier-config.js';
import { NotifierQueue, type NotifierQueueOptions } from './notifiers/queue.js';
import type { AlertNotification, Notifier } from './notifiers/types.js';
import { alertLabels, subjectLabels, type AlertingConfig, type AlertRule } from './rules.js';

const STATES: readonly AlertState[] = ['ok', 'pending', 'firing', 'resolved'];
/** Expired silences stay listed this long. */
const SILENCE_KEEP_MS = 24 * 3600_000;
/** The evaluation timer never sleeps longer than this, so a clock jump is noticed. */
const MAX_SLEEP_MS = 1000;

export interface AlertEngineOptions {
  /** Cumulative counts of the agent's live flows, read at evaluation time. */
  flowCounts: () => Iterable<FlowCountsSource>;
  /** The targets' interval and timeout: how long a target's latest run stands for it (see AlertInputs). */
  targets?: Iterable<TargetTiming>;
  /** Wall-clock ms; injected for tests. */
  now?: () => number;
  /** Where `*Env` secrets of notifiers are read. */
  env?: NodeJS.ProcessEnv;
  registry?: Registry;
  log?: Logger;
  /** Notifiers by name, replacing the ones the config describes (tests). */
  notifiers?: ReadonlyMap<string, Notifier>;
  queue?: NotifierQueueOptions;
  /** Told about every state change (the API's live `alert` event). Must not throw. */
  onTransition?: (e: AlertHistoryEntry) => void;
  /** Run the evaluation timer (default true); tests with an injected clock call evaluate(). */
  timer?: boolean;
}

/** An AlertHistoryEntry as a store keeps it (states as plain strings). */
export interface StoredAlertEvent {
  rule: string;
  from: string;
  to: string;
  at: number;
  value: number | null;
}

const isState = (s: string): s is AlertState => (STATES as readonly string[]).includes(s);

/** Where alert history and silences outlive a restart: the results store has these methods. */
export interface AlertPersistence {
  writeAlertEvents(events: readonly StoredAlertEvent[]): Promise<void>;
  /** The newest `perRule` events of each rule, oldest first. */
  alertEvents(perRule: number): Promise<StoredAlertEvent[]>;
  saveSilence(s: Omit<Silence, 'active'>): Promise<void>;
  /** Silences that ended at or after `endedAfter` (Unix ms). */
  silences(endedAfter: number): Promise<Omit<Silence, 'active'>[]>;
}

interface NamedQueue {
  name: string;
  kind: string;
  queue: NotifierQueue;
  /** Re-send firing alerts this often (the kind's NotifierDefinition.resendFiringMs); unset: never. */
  resendFiringMs: number | undefined;
}

/**
 * The agent's alerting: feeds the rule evaluator from the agent's own windowed statistics on a timer,
 * turns its notifications into messages with the numbers and a dashboard link, mutes silenced ones,
 * and hands the rest to each notifier's queue (which never blocks evaluation). Implements the API's
 * view of alerts.
 */
export class AlertEngine implements AlertControl {
  readonly #rules: readonly AlertRule[];
  readonly #byName: Map<string, AlertRule>;
  readonly #evaluator: RuleEvaluator;
  readonly #inputs: AlertInputs;
  readonly #queues: NamedQueue[] = [];
  readonly #now: () => number;
  readonly #opts: AlertEngineOptions;
  readonly #silences = new Map<string, Silence>();
  /**
   * Firing alerts as last sent, for the notifiers that want them re-sent (Alertmanager): when each was
   * sent, and when it was last re-sent to each such notifier.
   */
  readonly #firing = new Map<
    string,
    { n: AlertNotification; sentAt: number; resentAt: Map<string, number> }
  >();
  readonly #silenced: Counter<'rule'>;
  readonly #log: Logger;
  #dashboardUrl: string | undefined;
  #persist: AlertPersistence | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(config: AlertingConfig, opts: AlertEngineOptions) {
    this.#opts = opts;
    this.#log = (opts.log ?? silentLogger).child({ component: 'alerting' });
    this.#rules = config.rules;
    this.#byName = new Map(config.rules.map((r) => [r.name, r]));
    this.#now = opts.now ?? Date.now;
    this.#evaluator = new RuleEvaluator(config.rules, { now: this.#now });
    this.#inputs = new AlertInputs(config.rules, {
      flowCounts: opts.flowCounts,
      now: this.#now,
      ...(opts.targets && { targets: opts.targets }),
    });
    this.#dashboardUrl = config.dashboardUrl;
    for (const def of config.notifiers) {
      const notifier = opts.notifiers?.get(def.name) ?? createNotifier(def, opts.env);
      const queue = new NotifierQueue(notifier, {
        ...(def.timeout !== undefined && { attemptTimeoutMs: def.timeout }),
        maxAttempts: def.maxAttempts,
        ...opts.queue,
        onError: (err, n, attempt) =>
          this.#log.warn('notification attempt failed', {
            notifier: def.name,
            notifierKind: notifierKind(def),
            rule: n.rule,
            state: n.state,
            attempt,
            err,
          }),
      });
      const kind = notifierKind(def);
      this.#queues.push({ name: def.name, kind, queue, resendFiringMs: resendFiringMs(kind) });
    }
    const registers = opts.registry ? [opts.registry] : [];
    this.#silenced = new Counter({
      name: 'coalmine_alert_notifications_silenced_total',
      help: 'Alert notifications not sent because a silence matched them',
      labelNames: ['rule'],
      registers,
    });
    const status = () => this.#evaluator.status();
    const queues = this.#queues;
    new Gauge({
      name: 'coalmine_alert_state',
      help: 'State of each alert rule: 1 for its current state (ok, pending, firing, resolved), 0 for the others',
      labelNames: ['rule', 'state'],
      registers,
      collect() {
        this.reset();
        for (const s of status())
          for (const state of STATES) this.set({ rule: s.rule, state }, s.state === state ? 1 : 0);
      },
    });
    new Gauge({
      name: 'coalmine_alert_value',
      help: "Each alert rule's value at its last evaluation with data, in the condition's unit (seconds, a ratio, days)",
      labelNames: ['rule'],
      registers,
      collect() {
        this.reset();
        for (const s of status()) if (s.lastValue !== undefined) this.set({ rule: s.rule }, s.lastValue);
      },
    });
    const results = ['delivered', 'failed_attempt', 'gave_up', 'dropped'] as const;
    new Counter({
      name: 'coalmine_alert_notifications_total',
      help: 'Alert notifications per notifier: delivered, failed attempts (retried), given up after the last attempt, dropped (queue full)',
      labelNames: ['notifier', 'kind', 'result'],
      registers,
      collect() {
        this.reset();
        for (const { name, kind, queue } of queues) {
          const s = queue.stats();
          const by = {
            delivered: s.delivered,
            failed_attempt: s.failedAttempts,
            gave_up: s.gaveUp,
            dropped: s.dropped,
          };
          for (const result of results) this.inc({ notifier: name, kind, result }, by[result]);
        }
      },
    });
    new Gauge({
      name: 'coalmine_alert_notifier_queue_length',
      help: 'Alert notifications waiting for delivery, per notifier',
      labelNames: ['notifier', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const { name, kind, queue } of queues) this.set({ notifier: name, kind }, queue.stats().queued);
      },
    });
  }

  /** The base of notification links, e.g. the agent's own URL once it listens. */
  setDashboardUrl(url: string): void {
    this.#dashboardUrl ??= url;
  }

  /**
   * Loads the history and silences a previous run left in `store`, and keeps writing there from now on.
   * Rules that were pending or firing are again (see RuleEvaluator.restoreHistory): no second firing
   * notice after a restart, and the resolve notice still comes. Firing ones are told to Alertmanager at
   * the next evaluation, since it may have resolved them while the agent was away.
   */
  async restore(store: AlertPersistence): Promise<void> {
    const [events, silences] = await Promise.all([
      store.alertEvents(TRANSITION_HISTORY),
      store.silences(this.#now() - SILENCE_KEEP_MS),
    ]);
    const transitions: AlertTransition[] = [];
    for (const e of events)
      if (isState(e.from) && isState(e.to))
        transitions.push({ rule: e.rule, from: e.from, to: e.to, at: e.at, value: e.value ?? undefined });
    for (const e of this.#evaluator.restoreHistory(transitions))
      this.#firing.set(e.rule, { n: this.#message(e), sentAt: -Infinity, resentAt: new Map() });
    for (const s of silences)
      if (!this.#silences.has(s.id)) this.#silences.set(s.id, { ...s, active: false });
    this.#persist = store;
  }

  #save(what: string, p: Promise<void>): void {
    p.catch((err: unknown) => this.#log.error(`could not store ${what}`, { err }));
  }

  start(): void {
    if (this.#closed || this.#opts.timer === false || this.#timer) return;
    const loop = (): void => {
      this.evaluate();
      if (this.#closed) return;
      const next = this.#evaluator.nextDueAt();
      const wait = next === undefined ? 0 : Math.min(MAX_SLEEP_MS, Math.max(0, next - this.#now()));
      this.#timer = setTimeout(loop, wait);
      this.#timer.unref();
    };
    loop();
  }

  observeProbe(o: Observation): void {
    this.#inputs.observeProbe(o);
  }

  observeLatency(canary: string, coalminer: string, seconds: number): void {
    this.#inputs.observeLatency(canary, coalminer, seconds);
  }

  /** Evaluates every due rule and dispatches the notifications; never throws. */
  evaluate(): AlertTransition[] {
    let transitions: AlertTransition[] = [];
    try {
      transitions = this.#evaluator.evaluate((rule) => this.#inputs.datapoint(rule));
      if (this.#persist && transitions.length > 0)
        this.#save('alert history', this.#persist.writeAlertEvents(transitions.map(historyEntry)));
      for (const t of transitions) {
        if (t.to !== 'ok' || t.from !== 'resolved')
          this.#log[t.to === 'firing' ? 'warn' : 'info']('alert state changed', {
            rule: t.rule,
            from: t.from,
            to: t.to,
            value: t.value ?? null,
          });
        try {
          this.#opts.onTransition?.(historyEntry(t));
        } catch {
          // A listener's bug must not stop alerting.
        }
      }
      for (const n of this.#evaluator.notifications()) this.#dispatch(n);
      this.#resendFiring();
    } catch (err) {
      this.#log.error('alert evaluation failed', { err, stack: (err as Error).stack });
    }
    return transitions;
  }

  #message(e: Evaluated): AlertNotification {
    const rule = this.#byName.get(e.rule)!;
    const link = this.#link(rule);
    return {
      rule: e.rule,
      state: e.state,
      value: e.value ?? null,
      summary: summarize(rule, e.state, e.value, e.breaching),
      startsAt: e.startsAt,
      ...(e.endsAt !== undefined && { endsAt: e.endsAt }),
      labels: e.labels,
      annotations: e.annotations,
      ...(link !== undefined && { dashboardUrl: link }),
    };
  }

  #dispatch(e: Evaluated): void {
    const rule = this.#byName.get(e.rule)!;
    const n = this.#message(e);
    if (e.state === 'firing') this.#firing.set(e.rule, { n, sentAt: this.#now(), resentAt: new Map() });
    else this.#firing.delete(e.rule);
    if (this.#silencedBy(e.labels).length > 0) {
      this.#silenced.inc({ rule: e.rule });
      return;
    }
    for (const q of this.#targets(rule)) q.queue.enqueue(n);
  }

  /** Alertmanager resolves an alert it has not heard of within resolve_timeout; keep telling it. */
  #resendFiring(): void {
    const now = this.#now();
    for (const [name, f] of this.#firing) {
      const silenced = this.#silencedBy(f.n.labels).length > 0;
      for (const q of this.#targets(this.#byName.get(name)!)) {
        if (q.resendFiringMs === undefined) continue;
        if (now - (f.resentAt.get(q.name) ?? f.sentAt) < q.resendFiringMs) continue;
        f.resentAt.set(q.name, now);
        if (!silenced) q.queue.enqueue(f.n);
      }
    }
  }

  #targets(rule: AlertRule): NamedQueue[] {
    return rule.notify === undefined
      ? this.#queues
      : this.#queues.filter((q) => rule.notify!.includes(q.name));
  }

  #link(rule: AlertRule): string | undefined {
    if (this.#dashboardUrl === undefined) return undefined;
    const page = beforeFirst(this.#dashboardUrl, '#');
    const base = page.endsWith('/') ? page : `${page}/`;
    const path =
      rule.target !== undefined
        ? `#/target/${encodeURIComponent(rule.target)}`
        : `#/flow/${encodeURIComponent(rule.flow.canary)}/${encodeURIComponent(rule.flow.coalminer)}`;
    return base + path;
  }

  #silencedBy(labels: Record<string, string>): string[] {
    const now = this.#now();
    const ids: string[] = [];
    for (const s of this.#silences.values()) {
      if (s.startsAt > now || now >= s.endsAt) continue;
      if (Object.entries(s.matchers).every(([k, v]) => labels[k] === v)) ids.push(s.id);
    }
    return ids;
  }

  // --- AlertControl ---

  rules(): AlertRuleStatus[] {
    const status = new Map(this.#evaluator.status().map((s) => [s.rule, s]));
    return this.#rules.map((r) => {
      const s = status.get(r.name)!;
      const labels = alertLabels(r);
      return {
        rule: r.name,
        subject: subjectLabels(r),
        condition: describeCondition(r.condition),
        datapoints: { ...r.datapoints },
        forSeconds: r.forMs / 1000,
        evaluateEverySeconds: r.evaluateEveryMs / 1000,
        missingData: r.missingData,
        state: s.state,
        ...(s.activeSince !== undefined && { activeSince: s.activeSince }),
        ...(s.lastEvaluatedAt !== undefined && { lastEvaluatedAt: s.lastEvaluatedAt }),
        ...(s.lastValue !== undefined && { lastValue: s.lastValue }),
        silencedBy: this.#silencedBy(labels),
        labels,
        annotations: { ...r.annotations },
      };
    });
  }

  history(rule: string | undefined, limit: number): AlertHistoryEntry[] {
    const names = rule === undefined ? this.#rules.map((r) => r.name) : [rule];
    return names
      .flatMap((name) => this.#evaluator.history(name))
      .sort((a, b) => b.at - a.at)
      .slice(0, limit)
      .map(historyEntry);
  }

  silences(): Silence[] {
    const now = this.#now();
    for (const [id, s] of this.#silences) if (now - s.endsAt > SILENCE_KEEP_MS) this.#silences.delete(id);
    return [...this.#silences.values()]
      .map((s) => ({ ...s, active: s.startsAt <= now && now < s.endsAt }))
      .sort((a, b) => b.startsAt - a.startsAt);
  }

  addSilence(s: {
    matchers: Record<string, string>;
    endsAt: number;
    comment: string;
    createdBy: string;
  }): Silence {
    const now = this.#now();
    const silence: Silence = {
      id: randomUUID(),
      matchers: { ...s.matchers },
      startsAt: now,
      endsAt: s.endsAt,
      comment: s.comment,
      createdBy: s.createdBy,
      active: now < s.endsAt,
    };
    this.#silences.set(silence.id, silence);
    if (this.#persist) this.#save('a silence', this.#persist.saveSilence(withoutActive(silence)));
    this.#log.info('silence added', {
      silence: silence.id,
      createdBy: silence.createdBy,
      endsAt: new Date(silence.endsAt).toISOString(),
      matchers: silence.matchers,
      comment: silence.comment,
    });
    return { ...silence };
  }

  expireSilence(id: string): boolean {
    const s = this.#silences.get(id);
    if (!s) return false;
    const now = this.#now();
    if (s.endsAt > now) s.endsAt = now;
    if (this.#persist) this.#save('a silence', this.#persist.saveSilence(withoutActive(s)));
    this.#log.info('silence expired', { silence: id });
    return true;
  }

  /** Notifier delivery counts, by notifier name (tests, status). */
  notifierStats(): Record<string, ReturnType<NotifierQueue['stats']>> {
    return Object.fromEntries(this.#queues.map((q) => [q.name, q.queue.stats()]));
  }

  /** Waits until every queued notification was delivered or given up on (tests). */
  async idle(): Promise<void> {
    await Promise.all(this.#queues.map((q) => q.queue.idle()));
  }

  /** Stops evaluating; gives notifications in flight `graceMs` to go out, then drops the rest. */
  async close(graceMs = 2000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.idle(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    await Promise.all(this.#queues.map((q) => q.queue.close()));
  }
}

function withoutActive(s: Silence): Omit<Silence, 'active'> {
  const { active: _active, ...rest } = s;
  return rest;
}

function historyEntry(t: AlertTransition): AlertHistoryEntry {
  return { rule: t.rule, from: t.from, to: t.to, at: t.at, value: t.value ?? null };
}
