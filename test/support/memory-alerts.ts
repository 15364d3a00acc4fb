/**
 * ApiAlerts held in memory: for the API's tests and the dashboard's browser tests. A rule changes state
 * only when the test calls transition(); silences mute by label equality, as the agent's do.
 */
import type { ApiAlerts } from '../../src/api/v1/context.js';
import type { AlertHistoryEntry, AlertRuleStatus, AlertState, Silence } from '../../src/api/v1/contract.js';

/** A rule as configured, with its state so far; unset fields take the config defaults. */
export type MemoryAlertRule = Pick<AlertRuleStatus, 'rule' | 'subject' | 'condition'> &
  Partial<Omit<AlertRuleStatus, 'rule' | 'subject' | 'condition' | 'silencedBy'>>;

export interface MemoryAlertsOptions {
  rules: MemoryAlertRule[];
  /** Earlier transitions, in any order. */
  history?: AlertHistoryEntry[];
  /** Silences already there, as addSilence would have made them. */
  silences?: Omit<Silence, 'active'>[];
  now?: () => number;
  /** Told of every transition, as the agent tells its event stream. */
  onTransition?: (e: AlertHistoryEntry) => void;
}

/** How long an ended silence is still listed. */
export const EXPIRED_SILENCES_KEPT_MS = 24 * 3_600_000;
/** Transitions remembered, newest kept. */
const HISTORY_KEPT = 1000;

/** The labels a silence is matched against: the rule's own, alertname and the subject (these two win). */
export function alertLabels(r: Pick<AlertRuleStatus, 'rule' | 'subject' | 'labels'>): Record<string, string> {
  return { ...r.labels, alertname: r.rule, ...r.subject };
}

/** Whether every matcher equals the label of that name. */
export function silenceMatches(matchers: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(matchers).every(([k, v]) => Object.hasOwn(labels, k) && labels[k] === v);
}

export class MemoryAlerts implements ApiAlerts {
  private readonly byName = new Map<string, Omit<AlertRuleStatus, 'silencedBy'>>();
  /** Newest first. */
  private readonly log: AlertHistoryEntry[];
  private readonly kept: Omit<Silence, 'active'>[];
  private readonly now: () => number;
  private nextId = 1;

  constructor(private readonly opts: MemoryAlertsOptions) {
    this.now = opts.now ?? Date.now;
    for (const r of opts.rules) {
      if (this.byName.has(r.rule)) throw new Error(`two rules named ${r.rule}`);
      this.byName.set(r.rule, {
        datapoints: { m: 1, n: 1 },
        forSeconds: 0,
        evaluateEverySeconds: 15,
        missingData: 'notBreaching',
        state: 'ok',
        labels: {},
        annotations: {},
        ...r,
      });
    }
    this.log = (opts.history ?? []).slice().sort((a, b) => b.at - a.at);
    this.kept = (opts.silences ?? []).map((s) => ({ ...s, matchers: { ...s.matchers } }));
    this.nextId = this.kept.length + 1;
  }

  rules(): AlertRuleStatus[] {
    const active = this.silences().filter((s) => s.active);
    return [...this.byName.values()].map((r) => {
      const labels = alertLabels(r);
      return {
        ...r,
        labels, // as the agent lists them: with alertname and the subject
        silencedBy: active.filter((s) => silenceMatches(s.matchers, labels)).map((s) => s.id),
      };
    });
  }

  history(rule: string | undefined, limit: number): AlertHistoryEntry[] {
    const entries = rule === undefined ? this.log : this.log.filter((e) => e.rule === rule);
    return entries.slice(0, limit);
  }

  silences(): Silence[] {
    const now = this.now();
    // Reversed first so that, the sort being stable, of two started together the later one comes first.
    return this.kept
      .slice()
      .reverse()
      .filter((s) => s.endsAt > now - EXPIRED_SILENCES_KEPT_MS)
      .sort((a, b) => b.startsAt - a.startsAt)
      .map((s) => ({ ...s, matchers: { ...s.matchers }, active: s.startsAt <= now && now < s.endsAt }));
  }

  addSilence(s: {
    matchers: Record<string, string>;
    endsAt: number;
    comment: string;
    createdBy: string;
  }): Silence {
    const now = this.now();
    const silence = {
      id: `silence-${this.nextId++}`,
      matchers: { ...s.matchers },
      startsAt: now,
      endsAt: s.endsAt,
      comment: s.comment,
      createdBy: s.createdBy,
    };
    this.kept.push(silence);
    return { ...silence, matchers: { ...silence.matchers }, active: now < silence.endsAt };
  }

  expireSilence(id: string): boolean {
    const now = this.now();
    const s = this.kept.find((x) => x.id === id && x.endsAt > now - EXPIRED_SILENCES_KEPT_MS);
    if (!s) return false;
    if (s.endsAt > now) s.endsAt = now;
    return true;
  }

  /**
   * What an evaluation that changes a rule's state does: the rule takes the new state (a pending or
   * firing period keeps its start), the change goes to the history and to onTransition.
   */
  transition(rule: string, to: AlertState, value: number | null, at = this.now()): AlertHistoryEntry {
    const r = this.byName.get(rule);
    if (!r) throw new Error(`no rule named ${rule}`);
    const entry: AlertHistoryEntry = { rule, from: r.state, to, at, value };
    const wasActive = r.state === 'pending' || r.state === 'firing';
    const isActive = to === 'pending' || to === 'firing';
    r.state = to;
    if (isActive && !wasActive) r.activeSince = at;
    if (!isActive) delete r.activeSince;
    r.lastEvaluatedAt = at;
    if (value !== null) r.lastValue = value;
    this.log.unshift(entry);
    if (this.log.length > HISTORY_KEPT) this.log.length = HISTORY_KEPT;
    this.opts.onTransition?.(entry);
    return entry;
  }
}
