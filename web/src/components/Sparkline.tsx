import { useLayoutEffect, useRef } from 'preact/hooks';
import type { Palette } from '../theme.js';

export type SparkPoints = [number, number | null, number][];

interface Props {
  points: SparkPoints;
  palette: Palette;
  width?: number;
  height?: number;
}

/**
 * One small canvas per visible row: the median as a line (gaps where nothing succeeded) and a red tick
 * at the bottom for each step with failures. A 2D path, not a chart library, so 1,000 rows stay cheap.
 */
export function Sparkline({ points, palette, width = 120, height = 28 }: Props) {
  const ref = useRef<HTMLCanvasElement>(null);
  useLayoutEffect(() => {
    const canvas = ref.current;
    if (!canvas) return;
    drawSparkline(canvas, points, palette, width, height);
  }, [points, palette, width, height]);
  return (
    <canvas
      ref={ref}
      class="sparkline"
      width={width}
      height={height}
      style={{ width, height }}
      aria-hidden="true"
    />
  );
}

export function drawSparkline(
  canvas: HTMLCanvasElement,
  points: SparkPoints,
  palette: Palette,
  width: number,
  height: number,
): void {
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * dpr)) canvas.width = Math.round(width * dpr);
  if (canvas.height !== Math.round(height * dpr)) canvas.height = Math.round(height * dpr);
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  if (points.length === 0) return;
  const t0 = points[0]![0];
  const t1 = points[points.length - 1]![0];
  const span = Math.max(1, t1 - t0);
  let max = 0;
  for (const p of points) if (p[1] !== null && p[1] > max) max = p[1];
  const tickH = 3;
  const top = 2;
  const bottom = height - tickH - 2;
  const x = (t: number) => (points.length === 1 ? width - 2 : 1 + ((t - t0) / span) * (width - 2));
  const y = (v: number) => (max > 0 ? bottom - (v / max) * (bottom - top) : bottom);

  ctx.lineWidth = 1.25;
  ctx.strokeStyle = palette.accent;
  ctx.lineJoin = 'round';
  ctx.beginPath();
  let pen = false;
  for (const p of points) {
    if (p[1] === null) {
      pen = false;
      continue;
    }
    if (pen) ctx.lineTo(x(p[0]), y(p[1]));
    else ctx.moveTo(x(p[0]), y(p[1]));
    pen = true;
  }
  ctx.stroke();
  // A lone point between gaps would be invisible as a line: dot it.
  ctx.fillStyle = palette.accent;
  for (let i = 0; i < points.length; i++) {
    const p = points[i]!;
    if (p[1] === null) continue;
    const before = points[i - 1]?.[1] ?? null;
    const after = points[i + 1]?.[1] ?? null;
    if (before === null && after === null) ctx.fillRect(x(p[0]) - 1, y(p[1]) - 1, 2, 2);
  }
  ctx.fillStyle = palette.bad;
  const w = Math.max(1.5, (width - 2) / Math.max(1, points.length) - 0.5);
  for (const p of points) if (p[2] > 0) ctx.fillRect(x(p[0]) - w / 2, height - tickH, w, tickH);
}
