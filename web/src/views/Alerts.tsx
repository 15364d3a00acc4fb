import { useEffect, useState } from 'preact/hooks';
import type {
  AlertHistoryEntry,
  AlertRuleStatus,
  AlertState,
  Silence,
} from '../../../src/api/v1/contract.js';
import { mergeHistory, type AlertsState } from '../alerts.js';
import { ApiError } from '../api.js';
import { SilenceForm } from '../components/SilenceForm.js';
import { formatAgo, formatAlertValue, formatDateTime, formatDuration } from '../format.js';
import { flowHref, targetHref } from '../router.js';

const STATE_ORDER: Record<AlertState, number> = { firing: 0, pending: 1, resolved: 2, ok: 3 };
const HISTORY_SHOWN = 100;

export function StatePill({ state }: { state: AlertState }) {
  return <span class={`pill state-${state}`}>{state}</span>;
}

/**
 * Rules with their state, their history, and silences, with the means to add and end silences. The app
 * renders it again on every change of `alerts`.
 */
export function Alerts({ alerts }: { alerts: AlertsState }) {
  // "10m ago" must move on without an event.
  const [, setTick] = useState(0);
  useEffect(() => {
    const t = window.setInterval(() => setTick((n) => n + 1), 15_000);
    return () => window.clearInterval(t);
  }, []);
  // Values change at every evaluation and the stream sends only state changes: opening the view shows
  // the rules' values as of now, not as of the page's first load (then a rule may not have had one).
  useEffect(() => {
    void alerts.reload();
  }, [alerts]);
  const [form, setForm] = useState<{ key: number; matchers: Record<string, string> | null } | null>(null);
  const [notice, setNotice] = useState<{ ok: boolean; text: string } | null>(null);
  const now = Date.now();

  if (alerts.status === 'loading') return <p class="muted">Loading…</p>;
  if (alerts.status === 'error') return <p class="error-box">{alerts.error}</p>;
  if (alerts.status === 'off') {
    return (
      <section class="alerts">
        <h1>Alerts</h1>
        <div class="empty" data-testid="alerting-off">
          <p>Alerting is not configured on this agent.</p>
          <p>
            Add an <span class="mono">alerting:</span> section with rules to its config: for example a rule
            that fires when a target's p95 latency stays above a limit, or when a flow loses messages.
          </p>
        </div>
      </section>
    );
  }

  const rules = alerts.rules
    .slice()
    .sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || a.rule.localeCompare(b.rule));
  const counts = { firing: 0, pending: 0, resolved: 0, ok: 0 };
  for (const r of rules) counts[r.state]++;
  const openForm = (matchers: Record<string, string> | null) => {
    setNotice(null);
    setForm({ key: Date.now(), matchers });
  };

  const expire = async (id: string) => {
    setNotice(null);
    try {
      await alerts.expireSilence(id);
      setNotice({ ok: true, text: `Silence ${id} ended.` });
    } catch (e) {
      setNotice({ ok: false, text: writeError(e, 'ending a silence') });
    }
  };

  return (
    <section class="alerts">
      <div class="alerts-head">
        <h1>Alerts</h1>
        <span class="counts" data-testid="alert-counts">
          <span class="count-state state-firing">{counts.firing} firing</span>
          <span class="count-state state-pending">{counts.pending} pending</span>
          <span class="count-state state-resolved">{counts.resolved} resolved</span>
          <span class="count-state state-ok">{counts.ok} ok</span>
        </span>
        {alerts.error ? <span class="bad small">{alerts.error}</span> : null}
      </div>

      <h2 id="rules-title">Rules</h2>
      {rules.length === 0 ? (
        <p class="empty">No rules: add some under alerting.rules in the agent's config.</p>
      ) : (
        <div class="table-scroll">
          <table class="data" aria-labelledby="rules-title" data-testid="alert-rules">
            <thead>
              <tr>
                <th scope="col">State</th>
                <th scope="col">Rule</th>
                <th scope="col">Subject</th>
                <th scope="col">Condition</th>
                <th scope="col" class="num">
                  Last value
                </th>
                <th scope="col">Since</th>
                <th scope="col">Silenced by</th>
                {alerts.canWrite ? (
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                ) : null}
              </tr>
            </thead>
            <tbody>
              {rules.map((r) => (
                <RuleRow
                  key={r.rule}
                  r={r}
                  now={now}
                  silences={alerts.silences}
                  canWrite={alerts.canWrite}
                  onSilence={() => openForm({ alertname: r.rule })}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}

      <div class="section-head">
        <h2 id="silences-title">Silences</h2>
        {alerts.canWrite && !form ? (
          <button type="button" data-testid="new-silence" onClick={() => openForm(null)}>
            New silence
          </button>
        ) : null}
      </div>
      {form ? (
        <SilenceForm
          key={form.key}
          rules={alerts.rules}
          initial={form.matchers}
          defaultAuthor={alerts.tokenName ?? 'dashboard'}
          onCreate={async (s) => {
            const created = await alerts.createSilence(s);
            setNotice({ ok: true, text: `Silence ${created.id} created.` });
            return created;
          }}
          onClose={() => setForm(null)}
        />
      ) : null}
      <p
        class={`silence-notice small ${notice?.ok === false ? 'bad' : 'muted'}`}
        role="status"
        data-testid="silence-notice"
      >
        {notice?.text ?? ''}
      </p>
      <Silences silences={alerts.silences} now={now} canWrite={alerts.canWrite} onExpire={expire} />

      <History alerts={alerts} />
    </section>
  );
}

function writeError(e: unknown, what: string): string {
  return e instanceof ApiError && e.status === 403
    ? `This token may only read: ${what} needs a token with the write scope.`
    : (e as Error).message;
}

function SubjectLink({ subject }: { subject: AlertRuleStatus['subject'] }) {
  if ('target' in subject) {
    return (
      <a href={targetHref(subject.target)}>
        <span class="kind">target</span>
        {subject.target}
      </a>
    );
  }
  return (
    <a href={flowHref(subject.canary, subject.coalminer)}>
      <span class="kind">flow</span>
      {subject.canary} → {subject.coalminer}
    </a>
  );
}

function RuleRow({
  r,
  now,
  silences,
  canWrite,
  onSilence,
}: {
  r: AlertRuleStatus;
  now: number;
  silences: Silence[];
  canWrite: boolean;
  onSilence: () => void;
}) {
  // The agent's labels include alertname and the subject: shown once, in their own columns.
  const labels = Object.entries(r.labels).filter(([k]) => k !== 'alertname' && !Object.hasOwn(r.subject, k));
  const qualifiers = [
    r.datapoints.n > 1 ? `${r.datapoints.m} of ${r.datapoints.n} datapoints` : '',
    r.forSeconds > 0 ? `for ${formatDuration(r.forSeconds * 1000)}` : '',
  ].filter(Boolean);
  return (
    <tr data-rule={r.rule} data-state={r.state}>
      <td>
        <StatePill state={r.state} />
      </td>
      <th scope="row" class="rule-name">
        <strong>{r.rule}</strong>
        {r.annotations.summary ? <small class="muted">{r.annotations.summary}</small> : null}
        {labels.length > 0 ? (
          <small class="labels">
            {labels.map(([k, v]) => (
              <span key={k} class="chip mono">
                {k}={v}
              </span>
            ))}
          </small>
        ) : null}
      </th>
      <td>
        <SubjectLink subject={r.subject} />
      </td>
      <td>
        {r.condition}
        {qualifiers.length > 0 ? <small class="muted block">{qualifiers.join(' · ')}</small> : null}
      </td>
      <td class="num" data-testid="last-value">
        {formatAlertValue(r.condition, r.lastValue)}
      </td>
      <td
        data-testid="since"
        title={r.activeSince !== undefined ? new Date(r.activeSince).toLocaleString() : undefined}
      >
        {r.activeSince !== undefined ? formatAgo(r.activeSince, now) : '–'}
      </td>
      <td data-testid="silenced-by">
        {r.silencedBy.length === 0 ? (
          <span class="muted">–</span>
        ) : (
          r.silencedBy.map((id) => {
            const s = silences.find((x) => x.id === id);
            return (
              <span key={id} class="chip silenced" title={s ? `${id}: ${describeSilence(s)}` : id}>
                {shortId(id)}
              </span>
            );
          })
        )}
      </td>
      {canWrite ? (
        <td>
          <button type="button" class="small-button" aria-label={`Silence ${r.rule}`} onClick={onSilence}>
            Silence…
          </button>
        </td>
      ) : null}
    </tr>
  );
}

/** Agents make UUIDs: their first 8 characters tell silences apart on one page. */
function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 8)}…` : id;
}

function describeSilence(s: Silence): string {
  const m = Object.entries(s.matchers)
    .map(([k, v]) => `${k}="${v}"`)
    .join(', ');
  return `${m} until ${new Date(s.endsAt).toLocaleString()} by ${s.createdBy}${s.comment ? `: ${s.comment}` : ''}`;
}

function Silences({
  silences,
  now,
  canWrite,
  onExpire,
}: {
  silences: Silence[];
  now: number;
  canWrite: boolean;
  onExpire: (id: string) => Promise<void>;
}) {
  const [busy, setBusy] = useState<string | null>(null);
  // Expiring takes two clicks: a silence ended by a stray click would let pages through at once.
  const [confirming, setConfirming] = useState<string | null>(null);
  if (silences.length === 0) {
    return <p class="empty">No silences in the last 24 hours.</p>;
  }
  return (
    <div class="table-scroll">
      <table class="data" aria-labelledby="silences-title" data-testid="silences">
        <thead>
          <tr>
            <th scope="col">Id</th>
            <th scope="col">State</th>
            <th scope="col">Matchers</th>
            <th scope="col">Ends</th>
            <th scope="col">Created by</th>
            <th scope="col">Comment</th>
            {canWrite ? (
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            ) : null}
          </tr>
        </thead>
        <tbody>
          {silences.map((s) => (
            <tr key={s.id} data-silence={s.id} data-active={String(s.active)}>
              <th scope="row" class="mono" title={s.id}>
                {shortId(s.id)}
              </th>
              <td>
                <span class={`pill ${s.active ? 'silence-active' : 'silence-expired'}`}>
                  {s.active ? 'active' : 'expired'}
                </span>
              </td>
              <td>
                {Object.entries(s.matchers).map(([k, v]) => (
                  <span key={k} class="chip mono">
                    {k}="{v}"
                  </span>
                ))}
              </td>
              <td title={new Date(s.endsAt).toLocaleString()}>
                {s.active ? `in ${formatDuration(s.endsAt - now)}` : `ended ${formatAgo(s.endsAt, now)}`}
              </td>
              <td>{s.createdBy}</td>
              <td class="comment">{s.comment || <span class="muted">–</span>}</td>
              {canWrite ? (
                <td>
                  {s.active && confirming === s.id ? (
                    <span class="confirm" role="group" aria-label={`Expire silence ${s.id}?`}>
                      <button
                        type="button"
                        class="small-button danger"
                        aria-label={`Confirm: expire silence ${s.id}`}
                        disabled={busy === s.id}
                        onClick={() => {
                          setBusy(s.id);
                          void onExpire(s.id).finally(() => {
                            setBusy(null);
                            setConfirming(null);
                          });
                        }}
                      >
                        {busy === s.id ? 'Expiring…' : 'Expire now'}
                      </button>
                      <button
                        type="button"
                        class="small-button"
                        aria-label={`Keep silence ${s.id}`}
                        disabled={busy === s.id}
                        onClick={() => setConfirming(null)}
                      >
                        Keep
                      </button>
                    </span>
                  ) : s.active ? (
                    <button
                      type="button"
                      class="small-button"
                      aria-label={`Expire silence ${s.id}`}
                      onClick={() => setConfirming(s.id)}
                    >
                      Expire
                    </button>
                  ) : null}
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Newest first, live: the state's history (fed by the stream), deepened by a query when one rule is chosen. */
function History({ alerts }: { alerts: AlertsState }) {
  const [rule, setRule] = useState('');
  const [older, setOlder] = useState<AlertHistoryEntry[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setOlder([]);
    setError(null);
    if (rule === '') return;
    const ctrl = new AbortController();
    alerts.api
      .alertHistory(rule, HISTORY_SHOWN, ctrl.signal)
      .then((h) => setOlder(h.history))
      .catch((e: unknown) => {
        if (!ctrl.signal.aborted) setError((e as Error).message);
      });
    return () => ctrl.abort();
  }, [rule, alerts]);

  const live = rule === '' ? alerts.history : alerts.history.filter((h) => h.rule === rule);
  const entries = mergeHistory(live, older).slice(0, HISTORY_SHOWN);
  const names = alerts.rules.map((r) => r.rule).sort();
  return (
    <>
      <div class="section-head">
        <h2 id="history-title">History</h2>
        <select
          aria-label="Rule"
          value={rule}
          onChange={(e) => setRule((e.currentTarget as HTMLSelectElement).value)}
        >
          <option value="">All rules</option>
          {names.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </div>
      {error ? <p class="error-box">{error}</p> : null}
      {entries.length === 0 ? (
        <p class="empty">No state changes yet.</p>
      ) : (
        <div class="table-scroll">
          <table class="data" aria-labelledby="history-title" data-testid="alert-history">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Rule</th>
                <th scope="col">Change</th>
                <th scope="col" class="num">
                  Value
                </th>
              </tr>
            </thead>
            <tbody>
              {entries.map((h) => {
                const condition = alerts.rules.find((r) => r.rule === h.rule)?.condition ?? '';
                return (
                  <tr key={`${h.rule}|${h.at}|${h.to}`} data-history-rule={h.rule} data-to={h.to}>
                    <td title={new Date(h.at).toLocaleString()}>{formatDateTime(h.at)}</td>
                    <th scope="row">{h.rule}</th>
                    <td>
                      <StatePill state={h.from} /> <span aria-label="to">→</span> <StatePill state={h.to} />
                    </td>
                    <td class="num">{h.value === null ? 'no data' : formatAlertValue(condition, h.value)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
