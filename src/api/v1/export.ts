import { probeCsvHeader, probeCsvRow } from '../../store/csv.js';
import type { ExportRecord } from './context.js';

/** The same CSV as `coalmine export` (src/store/csv.ts), with RFC 4180's CRLF line endings. */
export function exportCsvHeader(): string {
  return `${probeCsvHeader()}\r\n`;
}

export function exportCsvLine(r: ExportRecord): string {
  return `${probeCsvRow(r)}\r\n`;
}

export function exportJsonLine(r: ExportRecord): string {
  return `${JSON.stringify(r)}\n`;
}
