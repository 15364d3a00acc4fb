/**
 * The alerts' state for the header badge and the alerts view: rules, recent history and silences from
 * the API, kept current by the `alert` events of the stream and a slow refresh (values change at every
 * evaluation, and only state changes are sent).
 */
import type { AlertHistoryEntry, AlertRuleStatus, NewSilence, Silence } from '../../src/api/v1/contract.js';
import { ApiError, type Api } from './api.js';
import type { AlertStreamEvent, LiveState } from './live.js';

/** loading: first answer pending; on; off: the agent has no `alerting:` section; error: see `error`. */
export type AlertingStatus = 'loading' | 'on' | 'off' | 'error';

const HISTORY_KEPT = 200;

export function historyKey(e: AlertHistoryEntry): string {
  return `${e.rule}\u0000${e.at}\u0000${e.to}`;
}

/** The labels a silence is matched against, as the agent builds them: alertname, subject, rule labels. */
export function ruleLabels(r: AlertRuleStatus): Record<string, string> {
  return { ...r.labels, alertname: r.rule, ...r.subject };
}

export function matchesAll(matchers: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(matchers).every(([k, v]) => Object.hasOwn(labels, k) && labels[k] === v);
}

export class AlertsState {
  rules: AlertRuleStatus[] = [];
  /** Newest first, every rule. */
  history: AlertHistoryEntry[] = [];
  silences: Silence[] = [];
  status: AlertingStatus = 'loading';
  error: string | null = null;
  /** Whether our token may create and end silences. */
  canWrite = false;
  /** Our token's name: the default author of a silence. */
  tokenName: string | null = null;
  version = 0;

  private readonly listeners = new Set<() => void>();
  private unsubscribe: (() => void) | undefined;
  private timer: number | undefined;
  private loading: Promise<void> | undefined;
  /** Events that arrived while a reload was out: its answer may predate them. */
  private raced: AlertHistoryEntry[] = [];

  constructor(
    readonly api: Api,
    private readonly live: LiveState,
    private readonly refreshMs = 30_000,
  ) {}

  get firing(): number {
    return this.rules.filter((r) => r.state === 'firing').length;
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  start(): void {
    this.unsubscribe ??= this.live.onAlert((e) => this.onStream(e));
    void this.reload();
    void this.api
      .whoami()
      .then((w) => {
        this.canWrite = w.scopes.includes('write');
        this.tokenName = w.name;
        this.changed();
      })
      .catch(() => {
        // An agent without /whoami: offer nothing that writes; the rest works.
      });
    this.timer ??= window.setInterval(() => void this.reload(), this.refreshMs);
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    window.clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Rules, history and silences afresh; concurrent calls share one round of requests. */
  reload(): Promise<void> {
    this.loading ??= this.fetchAll().finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async fetchAll(): Promise<void> {
    this.raced = [];
    try {
      const [r, h, s] = await Promise.all([
        this.api.alerts(),
        this.api.alertHistory(undefined, HISTORY_KEPT),
        this.api.silences(),
      ]);
      this.rules = r.alerts;
      for (const e of this.raced) this.applyToRule(e);
      // Events that arrived while the request was out are newer than its answer: keep them.
      this.history = mergeHistory(h.history, this.history).slice(0, HISTORY_KEPT);
      this.silences = s.silences;
      this.status = 'on';
      this.error = null;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && e.code === 'alerting_not_configured') {
        this.status = 'off';
        this.rules = [];
        this.history = [];
        this.silences = [];
        this.error = null;
      } else {
        if (this.status === 'loading') this.status = 'error';
        this.error = (e as Error).message;
      }
    }
    this.raced = [];
    this.changed();
  }

  private onStream(e: AlertStreamEvent): void {
    if (e.type === 'gap') {
      void this.reload();
      return;
    }
    this.apply(e.entry);
  }

  /** One state change: the rule takes it at once (a pending period carries on into firing). */
  apply(entry: AlertHistoryEntry): void {
    const key = historyKey(entry);
    if (!this.history.some((h) => historyKey(h) === key)) {
      this.history = mergeHistory([entry], this.history).slice(0, HISTORY_KEPT);
    }
    if (this.loading) this.raced.push(entry);
    if (!this.applyToRule(entry) && !this.loading) void this.reload(); // a new rule: the config changed
    this.changed();
  }

  /** False when there is no such rule. */
  private applyToRule(entry: AlertHistoryEntry): boolean {
    const i = this.rules.findIndex((r) => r.rule === entry.rule);
    const rule = this.rules[i];
    if (!rule) return false;
    if (entry.at >= (rule.lastEvaluatedAt ?? 0)) {
      const wasActive = rule.state === 'pending' || rule.state === 'firing';
      const isActive = entry.to === 'pending' || entry.to === 'firing';
      const next: AlertRuleStatus = { ...rule, state: entry.to, lastEvaluatedAt: entry.at };
      if (isActive && !wasActive) next.activeSince = entry.at;
      if (!isActive) delete next.activeSince;
      if (entry.value !== null) next.lastValue = entry.value;
      this.rules = this.rules.map((r, j) => (j === i ? next : r));
    }
    return true;
  }

  async createSilence(s: NewSilence): Promise<Silence> {
    const created = await this.api.createSilence(s);
    await this.refetch();
    return created;
  }

  async expireSilence(id: string): Promise<void> {
    await this.api.expireSilence(id);
    await this.refetch();
  }

  /** A reload that starts after now: one already out may have been answered before our change. */
  private async refetch(): Promise<void> {
    await this.loading;
    await this.reload();
  }

  private changed(): void {
    this.version++;
    for (const fn of this.listeners) fn();
  }
}

/** Both lists, newest first, each change once. */
export function mergeHistory(a: AlertHistoryEntry[], b: AlertHistoryEntry[]): AlertHistoryEntry[] {
  const seen = new Set<string>();
  const out: AlertHistoryEntry[] = [];
  for (const e of [...a, ...b]) {
    const k = historyKey(e);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(e);
  }
  return out.sort((x, y) => y.at - x.at);
}
