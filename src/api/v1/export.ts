import { PHASES } from '../../core/types.js';
import type { ExportRecord } from './context.js';

const COLUMNS = [
  'time',
  'time_ms',
  'name',
  'kind',
  'target',
  'ok',
  'duration_seconds',
  // One column per phase any probe can report, so a sheet's columns never shift.
  ...PHASES.map((p) => `${p}_seconds`),
  'error_code',
  'error_message',
  'values',
];

/** RFC 4180 quoting, and a leading ' on text a spreadsheet would run as a formula. */
function cell(v: string | number | boolean | undefined): string {
  if (v === undefined) return '';
  if (typeof v !== 'string') return String(v);
  const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function exportCsvHeader(): string {
  return `${COLUMNS.join(',')}\r\n`;
}

export function exportCsvLine(r: ExportRecord): string {
  const values = r.values && Object.keys(r.values).length > 0 ? JSON.stringify(r.values) : undefined;
  return (
    [
      cell(new Date(r.time).toISOString()),
      cell(r.time),
      cell(r.name),
      cell(r.kind),
      cell(r.target),
      cell(r.ok),
      cell(r.durationSeconds),
      ...PHASES.map((p) => cell(r.phases[p])),
      cell(r.errorCode),
      cell(r.errorMessage),
      cell(values),
    ].join(',') + '\r\n'
  );
}

export function exportJsonLine(r: ExportRecord): string {
  return `${JSON.stringify(r)}\n`;
}
