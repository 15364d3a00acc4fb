import { useState } from 'preact/hooks';
import { fromLocalInput, toLocalInput } from '../format.js';

export type RangeChoice =
  { preset: '1h' | '6h' | '24h' | '7d' } | { preset: 'custom'; from: number; to: number };

export const PRESET_MS = { '1h': 3_600_000, '6h': 21_600_000, '24h': 86_400_000, '7d': 604_800_000 } as const;

export function resolveRange(r: RangeChoice, now: number): { from: number; to: number } {
  if (r.preset === 'custom') return { from: r.from, to: r.to };
  return { from: now - PRESET_MS[r.preset], to: now };
}

/** 1h / 6h / 24h / 7d ending now, or a custom from-to in local time. */
export function RangePicker({ value, onChange }: { value: RangeChoice; onChange: (r: RangeChoice) => void }) {
  const now = Date.now();
  const current = resolveRange(value, now);
  const [from, setFrom] = useState(toLocalInput(current.from));
  const [to, setTo] = useState(toLocalInput(current.to));
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState(value.preset === 'custom');
  const apply = (e: Event) => {
    e.preventDefault();
    const f = fromLocalInput(from);
    const t = fromLocalInput(to);
    if (f === null || t === null) return setError('Enter both times.');
    if (f >= t) return setError('"From" must be before "to".');
    setError(null);
    onChange({ preset: 'custom', from: f, to: t });
  };
  return (
    <div class="range-picker">
      <div class="segmented" role="group" aria-label="Time range">
        {(['1h', '6h', '24h', '7d'] as const).map((p) => (
          <button
            key={p}
            type="button"
            aria-pressed={value.preset === p}
            onClick={() => {
              setOpen(false);
              onChange({ preset: p });
            }}
          >
            {p}
          </button>
        ))}
        <button type="button" aria-pressed={value.preset === 'custom'} onClick={() => setOpen(!open)}>
          custom
        </button>
      </div>
      {open ? (
        <form class="custom-range" onSubmit={apply}>
          <label>
            from{' '}
            <input
              type="datetime-local"
              value={from}
              onInput={(e) => setFrom((e.currentTarget as HTMLInputElement).value)}
            />
          </label>
          <label>
            to{' '}
            <input
              type="datetime-local"
              value={to}
              onInput={(e) => setTo((e.currentTarget as HTMLInputElement).value)}
            />
          </label>
          <button type="submit">Apply</button>
          {error ? <span class="bad">{error}</span> : null}
        </form>
      ) : null}
    </div>
  );
}
