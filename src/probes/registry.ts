import dns from './dns/index.js';
import http from './http/index.js';
import icmp from './icmp/index.js';
import type { ProbeDefinition } from './probe.js';
import tcp from './tcp/index.js';

/** Every probe kind by its kind word. Adding a kind is one folder and one line here. */
export const probes = { http, tcp, dns, icmp } satisfies Record<string, ProbeDefinition>;

export type ProbeKind = keyof typeof probes;

export const probeKinds = Object.keys(probes) as ProbeKind[];

export function isProbeKind(kind: string): kind is ProbeKind {
  return Object.hasOwn(probes, kind);
}
