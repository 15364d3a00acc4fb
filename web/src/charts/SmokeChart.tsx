import { useState } from 'preact/hooks';
import type uPlot from 'uplot';
import type { Series } from '../../../src/api/v1/contract.js';
import { formatMs } from '../format.js';
import { LOSS_CLASSES, lossClass, type Palette } from '../theme.js';
import { msAxis, timeAxis, useUplot } from './useUplot.js';

/** Loss over a step: probes count failed runs among their runs; flows count lost pings beside received ones. */
export function stepLoss(kind: 'target' | 'flow', p: Series['points'][number]): number {
  const total = kind === 'target' ? p.count : p.count + p.failures;
  return total > 0 ? p.failures / total : 0;
}

const ms = (v: number | null) => (v === null ? null : v * 1000);

/**
 * SmokePing's picture: p1-p99 and p5-p95 as shaded bands, the median drawn as a line whose colour
 * says how much was lost in that step, and markers along the edges for loss (top), duplicates and
 * reordering (bottom).
 */
export function SmokeChart({
  series,
  kind,
  palette,
  height = 300,
}: {
  series: Series;
  kind: 'target' | 'flow';
  palette: Palette;
  height?: number;
}) {
  // A few slow outliers flatten a linear axis; a log axis keeps the median readable beside them.
  const [log, setLog] = useState(false);
  const ref = useUplot(
    (width) => {
      const pts = series.points;
      const xs = pts.map((p) => p.time / 1000);
      const losses = pts.map((p) => stepLoss(kind, p));
      const data: uPlot.AlignedData = [
        xs,
        pts.map((p) => ms(p.p99)),
        pts.map((p) => ms(p.p95)),
        pts.map((p) => ms(p.p50)),
        pts.map((p) => ms(p.p5)),
        pts.map((p) => ms(p.p1)),
      ];
      const drawOverlay = (u: uPlot) => {
        const ctx = u.ctx;
        const { left, top, width: w, height: h } = u.bbox;
        const dpr = uPlotPxRatio();
        const median = data[3] as (number | null)[];
        const stepPx = Math.max(2, (w / Math.max(1, pts.length)) * 0.9);
        ctx.save();
        ctx.beginPath();
        ctx.rect(left, top, w, h);
        ctx.clip();
        // The median: each step's segment in its loss colour, SmokePing style.
        ctx.lineWidth = 2.5 * dpr;
        ctx.lineCap = 'butt';
        for (let i = 0; i < pts.length; i++) {
          const v = median[i];
          if (v === null || v === undefined) continue;
          const x = u.valToPos(xs[i]!, 'x', true);
          const y = u.valToPos(v, 'y', true);
          const prev = median[i - 1];
          ctx.strokeStyle = palette.loss[lossClass(losses[i]!)];
          ctx.beginPath();
          if (prev !== null && prev !== undefined) {
            ctx.moveTo(u.valToPos(xs[i - 1]!, 'x', true), u.valToPos(prev, 'y', true));
            ctx.lineTo(x, y);
          } else {
            ctx.moveTo(x - stepPx / 2, y);
            ctx.lineTo(x + stepPx / 2, y);
          }
          ctx.stroke();
        }
        // Markers: loss as triangles along the top, duplicates and reordering as ticks along the bottom.
        const mark = 5 * dpr;
        for (let i = 0; i < pts.length; i++) {
          const p = pts[i]!;
          const x = u.valToPos(xs[i]!, 'x', true);
          if (p.failures > 0) {
            ctx.fillStyle = palette.bad;
            ctx.beginPath();
            ctx.moveTo(x - mark, top);
            ctx.lineTo(x + mark, top);
            ctx.lineTo(x, top + mark * 1.6);
            ctx.closePath();
            ctx.fill();
          }
          if ((p.duplicated ?? 0) > 0) {
            ctx.fillStyle = palette.dup;
            ctx.fillRect(x - mark / 2, top + h - mark * 2.2, mark, mark);
          }
          if ((p.reordered ?? 0) > 0) {
            ctx.fillStyle = palette.reorder;
            ctx.fillRect(x - mark / 2, top + h - mark, mark, mark);
          }
        }
        ctx.restore();
      };
      const opts: uPlot.Options = {
        width,
        height,
        padding: [12, 12, 0, 0],
        scales: {
          x: { time: true, range: [series.from / 1000, series.to / 1000] },
          y: log ? { distr: 3, log: 10 } : { range: (_u, _min, max) => [0, niceMax(max)] },
        },
        axes: [timeAxis(palette.muted, palette.grid), msAxis(palette.muted, palette.grid, formatMs)],
        series: [
          {},
          { label: 'p99', stroke: 'transparent', points: { show: false }, value: (_u, v) => fmt(v) },
          { label: 'p95', stroke: 'transparent', points: { show: false }, value: (_u, v) => fmt(v) },
          {
            label: 'median',
            stroke: palette.loss[0],
            width: 2,
            paths: () => null,
            points: { show: false },
            value: (_u, v) => fmt(v),
          },
          { label: 'p5', stroke: 'transparent', points: { show: false }, value: (_u, v) => fmt(v) },
          { label: 'p1', stroke: 'transparent', points: { show: false }, value: (_u, v) => fmt(v) },
        ],
        bands: [
          { series: [1, 5], fill: palette.bandOuter },
          { series: [2, 4], fill: palette.bandInner },
        ],
        legend: { live: true },
        cursor: { points: { show: false } },
        hooks: { draw: [drawOverlay] },
      };
      return { opts, data };
    },
    [series, kind, palette, height, log],
  );
  return (
    <figure class="chart smoke">
      <div ref={ref} data-testid="smoke-chart" />
      <figcaption class="legend-note">
        <span class="swatch band-outer" /> p1–p99
        <span class="swatch band-inner" /> p5–p95
        <span class="sep">median by loss:</span>
        {LOSS_CLASSES.map((label, i) => (
          <span key={label} class="loss-key">
            <span class="swatch" style={{ background: palette.loss[i] }} />
            {label}
          </span>
        ))}
        <span class="sep" />
        <span class="mark loss-mark">▼</span> loss
        {kind === 'flow' ? (
          <>
            <span class="mark" style={{ color: palette.dup }}>
              ■
            </span>{' '}
            duplicates
            <span class="mark" style={{ color: palette.reorder }}>
              ■
            </span>{' '}
            reordered
          </>
        ) : null}
        <label class="log-toggle">
          <input
            type="checkbox"
            checked={log}
            onChange={(e) => setLog((e.currentTarget as HTMLInputElement).checked)}
          />{' '}
          log scale
        </label>
      </figcaption>
    </figure>
  );
}

function fmt(v: number | null | undefined): string {
  return v === null || v === undefined ? '–' : formatMs(v);
}

function niceMax(max: number | null): number {
  if (max === null || !Number.isFinite(max) || max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= max * 1.05) return m * p;
  return 10 * p;
}

function uPlotPxRatio(): number {
  return window.devicePixelRatio || 1;
}
