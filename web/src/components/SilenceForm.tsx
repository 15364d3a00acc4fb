import { useEffect, useRef, useState } from 'preact/hooks';
import type { AlertRuleStatus, NewSilence, Silence } from '../../../src/api/v1/contract.js';
import { matchesAll, ruleLabels } from '../alerts.js';
import { ApiError } from '../api.js';
import { formatDateTime } from '../format.js';

const DURATIONS: [label: string, seconds: number][] = [
  ['15 minutes', 900],
  ['1 hour', 3600],
  ['2 hours', 7200],
  ['4 hours', 14_400],
  ['8 hours', 28_800],
  ['1 day', 86_400],
  ['3 days', 259_200],
  ['1 week', 604_800],
  ['30 days', 2_592_000],
];
const DEFAULT_DURATION = 7200;

interface Row {
  id: number;
  name: string;
  value: string;
}

let nextRowId = 1;
const row = (name = '', value = ''): Row => ({ id: nextRowId++, name, value });

/** Creates a silence: matchers (prefilled from a rule), how long, why and who. */
export function SilenceForm({
  rules,
  initial,
  defaultAuthor,
  onCreate,
  onClose,
}: {
  rules: AlertRuleStatus[];
  /** Matchers to start from; null for a blank form. */
  initial: Record<string, string> | null;
  defaultAuthor: string;
  onCreate: (s: NewSilence) => Promise<Silence>;
  onClose: () => void;
}) {
  const [rows, setRows] = useState<Row[]>(() =>
    initial ? Object.entries(initial).map(([k, v]) => row(k, v)) : [row()],
  );
  const [duration, setDuration] = useState(DEFAULT_DURATION);
  const [comment, setComment] = useState('');
  const [author, setAuthor] = useState(defaultAuthor);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const first = useRef<HTMLInputElement>(null);
  const commentRef = useRef<HTMLInputElement>(null);

  // A form opened from a rule has its matchers: the comment is what is left to write.
  useEffect(() => (initial ? commentRef : first).current?.focus(), []);

  const matchers = Object.fromEntries(
    rows.filter((r) => r.name.trim() !== '').map((r) => [r.name.trim(), r.value]),
  );
  const muted = Object.keys(matchers).length
    ? rules.filter((r) => matchesAll(matchers, ruleLabels(r))).map((r) => r.rule)
    : [];

  const update = (id: number, patch: Partial<Row>) =>
    setRows((rs) => rs.map((r) => (r.id === id ? { ...r, ...patch } : r)));

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body: NewSilence = { matchers, durationSeconds: duration, comment: comment.trim() };
      if (author.trim() !== '') body.createdBy = author.trim();
      await onCreate(body);
      onClose();
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 403
          ? 'This token may only read: creating a silence needs a token with the write scope.'
          : (err as Error).message,
      );
      setBusy(false);
    }
  };

  return (
    <form
      class="silence-form"
      aria-label="New silence"
      data-testid="silence-form"
      onSubmit={(e) => void submit(e)}
    >
      <fieldset>
        <legend>Matchers: a rule is muted when its labels equal all of these</legend>
        {rows.map((r, i) => (
          <div class="matcher-row" key={r.id}>
            <input
              ref={i === 0 ? first : undefined}
              class="mono"
              aria-label={`Label name ${i + 1}`}
              placeholder="label, e.g. alertname"
              value={r.name}
              onInput={(e) => update(r.id, { name: (e.currentTarget as HTMLInputElement).value })}
            />
            <span aria-hidden="true">=</span>
            <input
              class="mono"
              aria-label={`Value ${i + 1}`}
              placeholder="value"
              value={r.value}
              onInput={(e) => update(r.id, { value: (e.currentTarget as HTMLInputElement).value })}
            />
            <button
              type="button"
              aria-label={`Remove matcher ${i + 1}`}
              disabled={rows.length === 1}
              onClick={() => setRows((rs) => rs.filter((x) => x.id !== r.id))}
            >
              ×
            </button>
          </div>
        ))}
        <button type="button" onClick={() => setRows((rs) => [...rs, row()])}>
          Add matcher
        </button>
      </fieldset>
      <p class={`muted small ${muted.length === 0 ? 'warn-text' : ''}`} data-testid="silence-preview">
        {Object.keys(matchers).length === 0
          ? 'Give at least one matcher.'
          : muted.length === 0
            ? 'Matches no configured rule now.'
            : `Mutes the notifications of ${muted.join(', ')}.`}
      </p>
      <div class="form-grid">
        <label>
          Duration
          <select
            value={duration}
            data-testid="silence-duration"
            onChange={(e) => setDuration(Number((e.currentTarget as HTMLSelectElement).value))}
          >
            {DURATIONS.map(([label, s]) => (
              <option key={s} value={s}>
                {label}
              </option>
            ))}
          </select>
          <small class="muted">until {formatDateTime(Date.now() + duration * 1000)}</small>
        </label>
        <label>
          Comment
          <input
            ref={commentRef}
            value={comment}
            maxLength={1000}
            placeholder="why, e.g. planned maintenance"
            data-testid="silence-comment"
            onInput={(e) => setComment((e.currentTarget as HTMLInputElement).value)}
          />
        </label>
        <label>
          Created by
          <input
            value={author}
            maxLength={100}
            onInput={(e) => setAuthor((e.currentTarget as HTMLInputElement).value)}
          />
        </label>
      </div>
      {error ? (
        <p class="error-box" role="alert" data-testid="silence-error">
          {error}
        </p>
      ) : null}
      <div class="form-actions">
        <button type="submit" class="primary" disabled={busy} data-testid="silence-create">
          {busy ? 'Creating…' : 'Create silence'}
        </button>
        <button type="button" onClick={onClose}>
          Cancel
        </button>
      </div>
    </form>
  );
}
