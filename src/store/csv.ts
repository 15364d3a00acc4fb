import { PHASES } from '../core/types.js';
import type { ProbeRecord } from './types.js';

/**
 * The CSV of raw probe results, one format for `coalmine export` and `GET /api/v1/export`. One column
 * per phase any probe can report, so a sheet's columns never shift; phases outside that list (none
 * today) go to other_phases as JSON.
 */
export const PROBE_CSV_COLUMNS = [
  'time',
  'time_ms',
  'name',
  'kind',
  'target',
  'ok',
  'duration_seconds',
  'error_code',
  'error_message',
  ...PHASES.map((p) => `${p}_seconds`),
  'other_phases',
  'values',
] as const;

/**
 * RFC 4180 quoting (a field holding a comma, quote, CR or LF is quoted, its quotes doubled), and a
 * leading ' on text a spreadsheet would run as a formula (=, +, -, @, tab, CR). Numbers are written
 * as they are.
 */
export function csvField(v: string | number | boolean | undefined): string {
  if (v === undefined) return '';
  if (typeof v !== 'string') return String(v);
  const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function probeCsvHeader(): string {
  return PROBE_CSV_COLUMNS.join(',');
}

/** One result as a CSV row, without a line ending. */
export function probeCsvRow(r: ProbeRecord): string {
  const other: Record<string, number> = {};
  for (const [k, v] of Object.entries(r.phases)) if (!(PHASES as readonly string[]).includes(k)) other[k] = v;
  const json = (o: Record<string, number> | undefined) =>
    o && Object.keys(o).length > 0 ? JSON.stringify(o) : undefined;
  return [
    new Date(r.time).toISOString(),
    r.time,
    r.name,
    r.kind,
    r.target,
    r.ok,
    r.durationSeconds,
    r.errorCode,
    r.errorMessage,
    ...PHASES.map((p) => r.phases[p]),
    json(other),
    json(r.values),
  ]
    .map(csvField)
    .join(',');
}
