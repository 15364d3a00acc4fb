import type { ProbeReport } from '../core/report.js';
import { icmpHeadline } from '../probes/icmp/headline.js';

export function ms(seconds: number): string {
  return Number.isFinite(seconds) ? `${(seconds * 1000).toFixed(3)} ms` : '-';
}

/** A plain text table: columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function phasesText(phases: Record<string, number>): string {
  return Object.entries(phases)
    .map(([k, v]) => `${k}=${(v * 1000).toFixed(3)}`)
    .join(' ');
}

export function reportRow(r: ProbeReport): string[] {
  return [
    r.kind,
    r.target,
    r.ok ? 'ok' : 'FAIL',
    ms(r.durationSeconds),
    phasesText(r.phases) || '-',
    r.ok ? summaryOfValues(r) : `${r.error?.code}: ${r.error?.message}`,
  ];
}

export const REPORT_HEADER = ['KIND', 'TARGET', 'RESULT', 'DURATION', 'PHASES (ms)', 'DETAIL'];

function summaryOfValues(r: ProbeReport): string {
  const v = r.values ?? {};
  const parts: string[] = [];
  if (v.http_status_code !== undefined) parts.push(`status ${v.http_status_code}`);
  const icmp = icmpHeadline(v);
  if (icmp !== undefined) parts.push(icmp);
  if (v.dns_answer_rrs !== undefined) parts.push(`${v.dns_answer_rrs} answers`);
  if (v.ssl_earliest_cert_expiry !== undefined) {
    const days = (v.ssl_earliest_cert_expiry * 1000 - Date.now()) / 86_400_000;
    parts.push(`cert expires in ${days.toFixed(1)} days`);
  }
  return parts.join(', ');
}
