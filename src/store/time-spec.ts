import { parseDuration } from '../core/duration.js';

/**
 * A point in time from the command line or a query string: `now`, Unix ms (`1700000000000`), an ISO
 * time (`2024-05-01T12:00:00Z`, `2024-05-01`), or relative to now (`-1h`, `-7d`, `-90m`).
 * Returns Unix ms, or undefined when the text is none of these.
 */
export function parseTimeSpec(text: string, nowMs: number): number | undefined {
  const s = text.trim();
  if (s === '') return undefined;
  if (s === 'now') return nowMs;
  if (/^\d{10,}$/.test(s)) return Number(s);
  const rel = /^([-+])(.+)$/.exec(s);
  if (rel) {
    const ms = parseDuration(rel[2]!);
    if (ms === undefined || /^\d+(\.\d+)?$/.test(rel[2]!)) return undefined;
    return rel[1] === '-' ? nowMs - ms : nowMs + ms;
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(s)) {
    const t = Date.parse(s);
    return Number.isFinite(t) ? t : undefined;
  }
  return undefined;
}
