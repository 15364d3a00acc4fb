/**
 * The alert engine's shapes: a rule's state, its history of changes, and silences. The HTTP API returns
 * them as they are (src/api/v1/contract.ts re-exports them).
 *
 * Times are Unix milliseconds.
 */

export type AlertState = 'ok' | 'pending' | 'firing' | 'resolved';

/**
 * GET /api/v1/alerts (read scope) -> { alerts: AlertRuleStatus[] }: every configured rule with its state.
 * Rules are configured under `alerting.rules`; the API never creates or edits one.
 */
export interface AlertRuleStatus {
  rule: string;
  /** What the rule watches: a probe target, or a canary -> coalminer flow. */
  subject: { target: string } | { canary: string; coalminer: string };
  /** The condition as a person reads it, e.g. "p95 latency > 0.25 s" or "no data for 5m". */
  condition: string;
  /** Fire when m of the last n datapoints breach. */
  datapoints: { m: number; n: number };
  forSeconds: number;
  evaluateEverySeconds: number;
  missingData: 'breaching' | 'notBreaching' | 'ignore';
  state: AlertState;
  /** When the current pending or firing period began (Unix ms). */
  activeSince?: number;
  lastEvaluatedAt?: number;
  /** The value at the last evaluation that had data (seconds, a ratio, days, ... as the condition says). */
  lastValue?: number;
  /** The active silences that mute this rule's notifications now, by id. */
  silencedBy: string[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/**
 * GET /api/v1/alerts/history?rule=NAME&limit=N (read scope) -> { history: AlertHistoryEntry[] }, newest
 * first. `rule` narrows to one rule (404 when no rule has that name); limit 1-1000, default 100.
 */
export interface AlertHistoryEntry {
  rule: string;
  from: AlertState;
  to: AlertState;
  /** Unix ms of the evaluation that made the change. */
  at: number;
  /** The value at that evaluation; null when it had no data. */
  value: number | null;
}

/**
 * A silence mutes notifications (not evaluation) of every rule whose labels equal all its matchers; the
 * labels are alertname, target or canary and coalminer, and the rule's own labels.
 *
 * GET    /api/v1/silences (read)          -> { silences: Silence[] }   active and expired (last 24 h)
 * POST   /api/v1/silences (write) NewSilence -> 201 Silence; 400 with the field at fault
 * DELETE /api/v1/silences/{id} (write)    -> 204; 404 when there is no such silence
 */
export interface Silence {
  id: string;
  matchers: Record<string, string>;
  startsAt: number;
  endsAt: number;
  comment: string;
  createdBy: string;
  /** startsAt <= now < endsAt */
  active: boolean;
}

/** What the alert engine offers the API and the dashboard: rule states, history and silences. */
export interface AlertControl {
  rules(): AlertRuleStatus[];
  /** Newest first; `rule` narrows it to one rule. */
  history(rule: string | undefined, limit: number): AlertHistoryEntry[];
  /** Active silences and the ones that ended in the last 24 h, newest first. */
  silences(): Silence[];
  /** Adds a silence; the caller has checked matchers and times. */
  addSilence(s: {
    matchers: Record<string, string>;
    endsAt: number;
    comment: string;
    createdBy: string;
  }): Silence;
  /** Ends a silence now; false when there is none with that id. */
  expireSilence(id: string): boolean;
}
