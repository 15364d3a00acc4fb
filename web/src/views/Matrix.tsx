import { useEffect, useState } from 'preact/hooks';
import type { Matrix as MatrixData } from '../../../src/api/v1/contract.js';
import type { Api } from '../api.js';
import { formatRatio, formatSeconds } from '../format.js';
import { flowHref } from '../router.js';

/**
 * Canaries down, coalminers across. A cell's colour runs green to red with its p95 on a log scale
 * between the fastest and slowest cell; loss is written in the cell and outlines it in red.
 */
export function Matrix({ api, theme }: { api: Api; theme: 'light' | 'dark' }) {
  const [data, setData] = useState<MatrixData | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let timer: number | undefined;
    const ctrl = new AbortController();
    const load = () => {
      api
        .matrix(ctrl.signal)
        .then((m) => {
          setData(m);
          setError(null);
        })
        .catch((e: unknown) => {
          if (!ctrl.signal.aborted) setError((e as Error).message);
        })
        .finally(() => {
          if (!ctrl.signal.aborted) timer = window.setTimeout(load, 15_000);
        });
    };
    load();
    return () => {
      ctrl.abort();
      window.clearTimeout(timer);
    };
  }, [api]);

  if (error && !data) return <p class="error-box">{error}</p>;
  if (!data) return <p class="muted">Loading…</p>;
  if (data.canaries.length === 0 || data.coalminers.length === 0) {
    return <p class="empty">No flows yet: configure canaries and coalminers that register with them.</p>;
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of data.cells)
    for (const c of row)
      if (c?.p95 !== null && c?.p95 !== undefined && c.p95 > 0) {
        lo = Math.min(lo, c.p95);
        hi = Math.max(hi, c.p95);
      }
  const colour = (p95: number | null): string | undefined => {
    if (p95 === null || !Number.isFinite(lo)) return undefined;
    const f = hi > lo ? Math.log(Math.max(p95, lo) / lo) / Math.log(hi / lo) : 0;
    const hue = 130 - 130 * Math.min(1, Math.max(0, f));
    return theme === 'dark' ? `hsl(${hue} 55% 28%)` : `hsl(${hue} 70% 82%)`;
  };
  return (
    <section class="matrix">
      <h1>Region matrix</h1>
      <p class="muted small">
        p95 latency and loss over the last hour, canary (row) to coalminer (column). Colour: p95 from{' '}
        {formatSeconds(Number.isFinite(lo) ? lo : null)} (green) to{' '}
        {formatSeconds(Number.isFinite(hi) ? hi : null)} (red); a red outline means loss.
      </p>
      {error ? <p class="error-box">{error}</p> : null}
      <div class="matrix-scroll">
        <table data-testid="matrix">
          <thead>
            <tr>
              <th class="corner">canary ↓ / coalminer →</th>
              {data.coalminers.map((c) => (
                <th key={c.name} scope="col">
                  {c.name}
                  <small>{c.region}</small>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {data.canaries.map((canary, i) => (
              <tr key={canary}>
                <th scope="row">{canary}</th>
                {data.coalminers.map((c, j) => {
                  const cell = data.cells[i]?.[j] ?? null;
                  if (!cell)
                    return (
                      <td key={c.name} class="none">
                        ·
                      </td>
                    );
                  const lossy = cell.lossRatio !== null && cell.lossRatio > 0;
                  return (
                    <td
                      key={c.name}
                      class={`cell ${cell.status} ${lossy ? 'lossy' : ''}`}
                      style={{ background: colour(cell.p95) }}
                      title={`${canary} → ${c.name}: ${cell.status}`}
                    >
                      <a href={flowHref(canary, c.name)}>
                        <span class="p95">{formatSeconds(cell.p95)}</span>
                        <span class={`loss ${lossy ? 'bad' : ''}`}>
                          loss {formatRatio(cell.lossRatio, 2)}
                        </span>
                        {cell.status === 'down' ? <span class="bad">down</span> : null}
                      </a>
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
