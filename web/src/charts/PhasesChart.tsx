import type uPlot from 'uplot';
import type { Series } from '../../../src/api/v1/contract.js';
import { formatMs } from '../format.js';
import type { Palette } from '../theme.js';
import { msAxis, timeAxis, useUplot } from './useUplot.js';

/** blackbox_exporter's HTTP phases, in the order a request goes through them. */
const ORDER = ['resolve', 'connect', 'tls', 'processing', 'transfer'];

export function phaseNames(series: Series): string[] {
  const seen = new Set<string>();
  for (const p of series.points) for (const k of Object.keys(p.phases ?? {})) seen.add(k);
  const known = ORDER.filter((k) => seen.has(k));
  const other = [...seen].filter((k) => !ORDER.includes(k)).sort();
  return [...known, ...other];
}

/** Mean time per HTTP phase, stacked: the top edge is the whole request. */
export function PhasesChart({
  series,
  palette,
  height = 220,
}: {
  series: Series;
  palette: Palette;
  height?: number;
}) {
  const names = phaseNames(series);
  const ref = useUplot(
    (width) => {
      if (names.length === 0) return null;
      const pts = series.points;
      const raw = names.map((n) =>
        pts.map((p) => (p.phases && p.phases[n] !== undefined ? p.phases[n]! * 1000 : null)),
      );
      // Stack from the first phase up; a step without phases stays a gap.
      const stacked: (number | null)[][] = [];
      names.forEach((_n, k) => {
        stacked.push(
          pts.map((p, i) => {
            if (!p.phases) return null;
            let sum = 0;
            for (let j = 0; j <= k; j++) sum += raw[j]![i] ?? 0;
            return sum;
          }),
        );
      });
      const data: uPlot.AlignedData = [pts.map((p) => p.time / 1000), ...stacked];
      const colour = (k: number) => palette.phases[k % palette.phases.length]!;
      const opts: uPlot.Options = {
        width,
        height,
        padding: [12, 12, 0, 0],
        scales: {
          x: { time: true, range: [series.from / 1000, series.to / 1000] },
          y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
        },
        axes: [timeAxis(palette.muted, palette.grid), msAxis(palette.muted, palette.grid, formatMs)],
        series: [
          {},
          ...names.map((n, k) => ({
            label: n,
            stroke: colour(k),
            width: 1,
            fill: k === 0 ? colour(0) + '99' : undefined,
            points: { show: false },
            value: (_u: uPlot, _v: number | null, _si: number, idx: number | null) => {
              const v = idx === null ? null : raw[k]![idx];
              return v === null || v === undefined ? '–' : formatMs(v);
            },
          })),
        ],
        bands: names
          .slice(1)
          .map((_n, i) => ({ series: [i + 2, i + 1] as [number, number], fill: colour(i + 1) + '99' })),
        cursor: { points: { show: false } },
      };
      return { opts, data };
    },
    [series, palette, height, names.join(',')],
  );
  if (names.length === 0) return <p class="empty chart-empty">No phase timings in this range.</p>;
  return (
    <figure class="chart phases">
      <div ref={ref} data-testid="phases-chart" />
    </figure>
  );
}
