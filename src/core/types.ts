import type { Clock } from './clock.js';

/** Phases of a probe, named as blackbox_exporter names them where it has a name; in report order. */
export const PHASES = [
  'resolve',
  'connect',
  'tls',
  'processing',
  'transfer',
  'setup',
  'rtt',
  'request',
  'exchange',
] as const;

export type Phase = (typeof PHASES)[number];

export type Phases = Partial<Record<Phase, bigint>>;

/** Why a probe failed. Expected failures are values: a probe never throws because a target is down. */
export type ProbeErrorCode =
  | 'timeout'
  | 'refused'
  | 'unreachable'
  | 'reset'
  | 'dns'
  | 'tls'
  | 'http_status'
  | 'http_version'
  | 'validation'
  | 'expect'
  | 'protocol'
  | 'permission'
  | 'unsupported'
  | 'aborted'
  | 'error';

export interface ProbeError {
  code: ProbeErrorCode;
  message: string;
  /** The underlying system error code (ECONNREFUSED, CERT_HAS_EXPIRED, ...) when there is one. */
  cause?: string;
}

/**
 * Named numeric facts a probe learned beyond its timings (`http_status_code`, `ssl_earliest_cert_expiry`,
 * `icmp_packets_received`...). Names follow blackbox_exporter's `probe_*` metrics without the prefix, so a
 * sink can export them without knowing any probe kind.
 */
export type ProbeValues = Record<string, number>;

interface ProbeResultBase {
  /**
   * Wall time of the whole run, success or failure, as blackbox_exporter's `probe_duration_seconds`:
   * runProbe measures it, our own overhead included.
   */
  durationNs: bigint;
  /**
   * The target's share of it, timed by the kernel where it can be (TCP_INFO connect, packet
   * timestamps): the sum of the phases, or an ICMP round's mean round-trip time. Successful runs only.
   */
  networkNs?: bigint;
  phases: Phases;
  values?: ProbeValues;
  /** Non-numeric detail for people and the API (resolved address, HTTP version, answers...). */
  detail?: Record<string, unknown>;
}

export interface ProbeSuccess extends ProbeResultBase {
  ok: true;
}

export interface ProbeFailure extends ProbeResultBase {
  ok: false;
  error: ProbeError;
}

export type ProbeResult = ProbeSuccess | ProbeFailure;

export interface ProbeContext {
  signal: AbortSignal;
  clock: Clock;
  /** Milliseconds this run may take; `signal` aborts when it is up. */
  timeoutMs: number;
}

/** A completed probe run, as sinks and the API see it. */
export interface Observation {
  name: string;
  kind: string;
  target: string;
  /** Wall-clock ms when the run started. */
  startedAtMs: number;
  result: ProbeResult;
}
