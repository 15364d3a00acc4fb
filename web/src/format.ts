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

/** A span as people say it: 45s, 12m, 1h 30m, 3d 4h. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 === 0 ? `${h}h` : `${h}h ${m % 60}m`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d}d` : `${d}d ${h % 24}h`;
}

/** Date and time in local time, the date left out when it is today. */
export function formatDateTime(ms: number, now = Date.now()): string {
  const d = new Date(ms);
  if (d.toDateString() === new Date(now).toDateString()) return formatTime(ms);
  return d.toLocaleString(undefined, {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/**
 * An alert rule's value in the unit its condition is written in (the agent writes "p95 latency > 0.25 s",
 * "loss > 1 %", "probe failing", "no data for 5m", "certificate expires within 14 days"); a plain number
 * when the condition names no unit.
 */
export function formatAlertValue(condition: string, value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  // noData's value is how long the subject has been silent, measured at evaluations: whole seconds.
  if (/^no data/.test(condition)) return `${Number(value.toFixed(value < 10 ? 1 : 0))} s silent`;
  if (/ s$|latency/.test(condition)) return formatSeconds(value);
  if (/ %$|^probe failing/.test(condition)) return formatRatio(value, 2);
  if (/ days$/.test(condition)) return `${Number(value.toFixed(1))} days`;
  return String(Number(value.toPrecision(4)));
}
