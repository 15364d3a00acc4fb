import { nsToSeconds } from './clock.js';
import type { Observation, ProbeError, ProbeValues } from './types.js';

/** The JSON form of one probe run, shared by `coalmine probe --json`, POST /check and the API. */
export interface ProbeReport {
  name: string;
  kind: string;
  target: string;
  time: string;
  ok: boolean;
  /** Wall time of the run, as blackbox_exporter's probe_duration_seconds. */
  durationSeconds: number;
  /** Successful runs: the target's network time, kernel-timed where possible (see ProbeResult.networkNs). */
  networkSeconds?: number;
  phases: Record<string, number>;
  values?: ProbeValues;
  detail?: Record<string, unknown>;
  error?: ProbeError;
}

export function toReport(o: Observation): ProbeReport {
  const r = o.result;
  const phases: Record<string, number> = {};
  for (const [k, v] of Object.entries(r.phases)) if (v !== undefined) phases[k] = nsToSeconds(v);
  const report: ProbeReport = {
    name: o.name,
    kind: o.kind,
    target: o.target,
    time: new Date(o.startedAtMs).toISOString(),
    ok: r.ok,
    durationSeconds: nsToSeconds(r.durationNs),
    phases,
  };
  if (r.networkNs !== undefined) report.networkSeconds = nsToSeconds(r.networkNs);
  if (r.values && Object.keys(r.values).length > 0) report.values = r.values;
  if (r.detail && Object.keys(r.detail).length > 0) report.detail = r.detail;
  if (!r.ok) report.error = r.error;
  return report;
}
