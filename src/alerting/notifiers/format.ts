import type { AlertNotification } from './types.js';

/** The value as a person reads it: "no data" rather than null, at most 4 significant digits. */
export function formatValue(value: number | null): string {
  if (value === null) return 'no data';
  if (!Number.isFinite(value)) return String(value);
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
}

/** "[FIRING] rule-name", the one-line title every human-facing notifier uses. */
export function title(n: AlertNotification): string {
  return `[${n.state.toUpperCase()}] ${n.rule}`;
}

/** Labels as Prometheus writes them, sorted so the same set always gives the same string. */
export function formatLabels(labels: Record<string, string>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`);
  return `{${parts.join(',')}}`;
}

/** Plain-text lines with the numbers, the times and the link; shared by email and Slack's fallback. */
export function textLines(n: AlertNotification): string[] {
  const lines = [title(n), n.summary, `value: ${formatValue(n.value)}`];
  lines.push(`since: ${new Date(n.startsAt).toISOString()}`);
  if (n.endsAt !== undefined) lines.push(`until: ${new Date(n.endsAt).toISOString()}`);
  if (Object.keys(n.labels).length > 0) lines.push(`labels: ${formatLabels(n.labels)}`);
  for (const [k, v] of Object.entries(n.annotations)) lines.push(`${k}: ${v}`);
  if (n.dashboardUrl) lines.push(`dashboard: ${n.dashboardUrl}`);
  return lines;
}
