import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/**
 * Owns one uPlot instance in a container: builds it when `deps` change (data, theme), follows the
 * container's width, and destroys it on unmount.
 */
export function useUplot(
  make: (width: number) => { opts: uPlot.Options; data: uPlot.AlignedData } | null,
  deps: unknown[],
) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const built = make(Math.max(200, el.clientWidth));
    if (!built) return;
    const plot = new uPlot(built.opts, built.data, el);
    const ro = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (w !== plot.width) plot.setSize({ width: w, height: built.opts.height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, deps);
  return ref;
}

export function timeAxis(color: string, grid: string): uPlot.Axis {
  return { stroke: color, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
}

export function msAxis(color: string, grid: string, format: (v: number) => string): uPlot.Axis {
  return {
    stroke: color,
    grid: { stroke: grid, width: 1 },
    ticks: { stroke: grid, width: 1 },
    size: 64,
    // Log axes leave nulls among their splits for ticks without a label.
    values: (_u, splits) => splits.map((v) => (v === null || v === undefined ? '' : format(v))),
  };
}
