import { useState } from 'preact/hooks';
import type { ProbeReport } from '../../../src/core/report.js';
import { ApiError, type Api } from '../api.js';
import { formatSeconds, formatTime } from '../format.js';

type State =
  | { phase: 'idle' }
  | { phase: 'running' }
  | { phase: 'done'; results: ProbeReport[] }
  | { phase: 'error'; message: string };

/** Runs the target's probe once, now (POST /api/v1/check), and shows what came back. */
export function CheckNow({
  api,
  target,
  onResult,
}: {
  api: Api;
  target: string;
  onResult?: (r: ProbeReport) => void;
}) {
  const [state, setState] = useState<State>({ phase: 'idle' });
  const run = async () => {
    setState({ phase: 'running' });
    try {
      const { results } = await api.check(target);
      setState({ phase: 'done', results });
      for (const r of results) onResult?.(r);
    } catch (e) {
      const message =
        e instanceof ApiError && e.status === 403
          ? 'This token may only read: running a check needs a token with the write scope.'
          : (e as Error).message;
      setState({ phase: 'error', message });
    }
  };
  return (
    <div class="check-now">
      <button
        type="button"
        class="primary"
        onClick={() => void run()}
        disabled={state.phase === 'running'}
        data-testid="check-now"
      >
        {state.phase === 'running' ? 'Checking…' : 'Check now'}
      </button>
      <div class="check-result" aria-live="polite" data-testid="check-result">
        {state.phase === 'error' ? <span class="bad">{state.message}</span> : null}
        {state.phase === 'done' && state.results.length === 0 ? <span>No result.</span> : null}
        {state.phase === 'done'
          ? state.results.map((r) => (
              <div key={r.time} class={`result ${r.ok ? 'ok' : 'failed'}`}>
                <strong class={r.ok ? 'good' : 'bad'}>
                  {r.ok ? 'OK' : `Failed: ${r.error?.code ?? 'error'}`}
                </strong>
                <span>{formatSeconds(r.durationSeconds)}</span>
                <span class="muted">at {formatTime(Date.parse(r.time))}</span>
                {Object.entries(r.phases).map(([k, v]) => (
                  <span key={k} class="phase">
                    {k} {formatSeconds(v)}
                  </span>
                ))}
                {r.values?.http_status_code !== undefined ? (
                  <span class="phase">status {r.values.http_status_code}</span>
                ) : null}
                {r.error ? <span class="bad msg">{r.error.message}</span> : null}
              </div>
            ))
          : null}
      </div>
    </div>
  );
}
