/** Numbers as people read them: latencies in ms/µs/s, ratios in percent, times in local time. */

export function formatSeconds(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return '–';
  const abs = Math.abs(s);
  if (abs >= 10) return `${s.toFixed(1)} s`;
  if (abs >= 1) return `${s.toFixed(2)} s`;
  if (abs >= 0.1) return `${(s * 1000).toFixed(0)} ms`;
  if (abs >= 0.01) return `${(s * 1000).toFixed(1)} ms`;
  if (abs >= 0.001) return `${(s * 1000).toFixed(2)} ms`;
  return `${(s * 1e6).toFixed(0)} µs`;
}

/** Milliseconds on chart axes. */
export function formatMs(ms: number): string {
  if (ms === 0) return '0';
  if (ms >= 1000) return `${(ms / 1000).toFixed(ms >= 10_000 ? 0 : 1)} s`;
  if (ms >= 10) return `${ms.toFixed(0)} ms`;
  if (ms >= 1) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

export function formatRatio(r: number | null | undefined, digits = 1): string {
  if (r === null || r === undefined || !Number.isFinite(r)) return '–';
  if (r === 0) return '0%';
  const pct = r * 100;
  if (pct < 0.1) return '<0.1%';
  if (pct > 99.9 && pct < 100) return '>99.9%';
  return `${pct.toFixed(pct >= 10 ? 0 : digits)}%`;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

export function formatTime(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

export function formatAgo(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

/** `2024-05-01T12:30` in local time, for <input type="datetime-local">. */
export function toLocalInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

export function fromLocalInput(s: string): number | null {
  const ms = new Date(s).getTime();
  return Number.isFinite(ms) ? ms : null;
}
