import { useEffect, useRef, useState } from 'preact/hooks';
import type { Series } from '../../../src/api/v1/contract.js';
import { formatSeconds, formatTime } from '../format.js';
import type { Palette } from '../theme.js';

const LEFT = 64;
const BOTTOM = 22;
const TOP = 6;
const RIGHT = 12;

/**
 * Latency heatmap: one column per step, one row per latency band (the server's `heatmapBounds`,
 * log-spaced), darker where more samples fell. Each column is scaled to its own busiest band so
 * the shape of the distribution shows even when the rate changes.
 */
export function Heatmap({
  series,
  palette,
  height = 220,
}: {
  series: Series;
  palette: Palette;
  height?: number;
}) {
  const ref = useRef<HTMLCanvasElement>(null);
  const wrap = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(600);
  const [hover, setHover] = useState<string | null>(null);
  const bounds = series.heatmapBounds;
  const usable =
    bounds !== undefined &&
    bounds.length >= 2 &&
    series.points.some((p) => p.heatmap && p.heatmap.length > 0);

  useEffect(() => {
    const el = wrap.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setWidth(Math.max(200, el.clientWidth)));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  useEffect(() => {
    const canvas = ref.current;
    if (!canvas || !usable || !bounds) return;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    const ctx = canvas.getContext('2d');
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const bands = bounds.length - 1;
    const plotW = width - LEFT - RIGHT;
    const plotH = height - TOP - BOTTOM;
    const span = Math.max(1, series.to - series.from);
    const colW = Math.max(1, (series.step / span) * plotW);
    const rowH = plotH / bands;
    ctx.save();
    ctx.beginPath();
    ctx.rect(LEFT, TOP, plotW, plotH);
    ctx.clip();
    ctx.fillStyle = palette.heat;
    for (const p of series.points) {
      const counts = p.heatmap;
      if (!counts) continue;
      let max = 0;
      for (const c of counts) if (c > max) max = c;
      if (max === 0) continue;
      const x = LEFT + ((p.time - series.from) / span) * plotW;
      for (let b = 0; b < counts.length && b < bands; b++) {
        const c = counts[b]!;
        if (c === 0) continue;
        ctx.globalAlpha = 0.12 + 0.88 * Math.sqrt(c / max);
        ctx.fillRect(x, TOP + plotH - (b + 1) * rowH, Math.ceil(colW), Math.ceil(rowH));
      }
    }
    ctx.restore();
    ctx.globalAlpha = 1;
    // Axes: a few band edges on the left, a few times along the bottom.
    ctx.strokeStyle = palette.grid;
    ctx.strokeRect(LEFT + 0.5, TOP + 0.5, plotW, plotH);
    ctx.fillStyle = palette.muted;
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    const labelEvery = Math.max(1, Math.ceil(bands / Math.max(1, Math.floor(plotH / 28))));
    for (let b = 0; b <= bands; b += labelEvery) {
      ctx.fillText(formatSeconds(bounds[b]!), LEFT - 6, TOP + plotH - b * rowH);
    }
    ctx.textBaseline = 'top';
    const ticks = Math.max(2, Math.floor(plotW / 110));
    for (let i = 0; i <= ticks; i++) {
      const t = series.from + (span * i) / ticks;
      const label =
        span > 2 * 86_400_000
          ? new Date(t).toLocaleDateString(undefined, { month: 'short', day: 'numeric' })
          : formatTime(t).slice(0, 5);
      ctx.textAlign = i === 0 ? 'left' : i === ticks ? 'right' : 'center';
      ctx.fillText(label, LEFT + (plotW * i) / ticks, TOP + plotH + 5);
    }
  }, [series, palette, width, height, usable, bounds]);

  const onMove = (e: MouseEvent) => {
    const rect = (e.currentTarget as HTMLCanvasElement).getBoundingClientRect();
    const x = e.clientX - rect.left - LEFT;
    const y = e.clientY - rect.top - TOP;
    const plotW = width - LEFT - RIGHT;
    const plotH = height - TOP - BOTTOM;
    if (!bounds || x < 0 || y < 0 || x > plotW || y > plotH) return setHover(null);
    const t = series.from + (x / plotW) * (series.to - series.from);
    const p = series.points.find((q) => t >= q.time && t < q.time + series.step);
    const band = Math.min(bounds.length - 2, Math.floor(((plotH - y) / plotH) * (bounds.length - 1)));
    const c = p?.heatmap?.[band] ?? 0;
    setHover(
      `${p ? formatTime(p.time) : ''}  ${formatSeconds(bounds[band]!)}–${formatSeconds(bounds[band + 1]!)}: ${c} samples`,
    );
  };
  return (
    <figure class="chart heatmap" ref={wrap}>
      {!usable ? <p class="empty chart-empty">No latency distribution in this range.</p> : null}
      <canvas
        hidden={!usable}
        ref={ref}
        data-testid="heatmap"
        style={{ width: `${width}px`, height: `${height}px` }}
        onMouseMove={onMove}
        onMouseLeave={() => setHover(null)}
      />
      <figcaption class="legend-note">
        {hover ?? 'Darker: more samples at that latency (each column scaled to its busiest band).'}
      </figcaption>
    </figure>
  );
}
