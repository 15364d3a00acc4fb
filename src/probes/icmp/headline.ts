import type { ProbeValues } from '../../core/types.js';

const ms = (s: number | undefined) => ((s ?? 0) * 1000).toFixed(3);

/**
 * What a person reads first about an ICMP round, as ping's last lines: loss and the round-trip
 * statistics, never the round's duration (five packets 20 ms apart take 80 ms whatever the RTT).
 * Undefined for values that are not an ICMP round's.
 */
export function icmpHeadline(v: ProbeValues): string | undefined {
  if (v.icmp_packets_sent === undefined) return undefined;
  const received = v.icmp_packets_received ?? 0;
  const loss = v.icmp_packet_loss_ratio;
  const parts = [
    `${received}/${v.icmp_packets_sent} replies` +
      (loss !== undefined ? `, ${+(loss * 100).toFixed(1)}% loss` : ''),
  ];
  if (v.icmp_rtt_min_seconds !== undefined) {
    const stats = [
      v.icmp_rtt_min_seconds,
      v.icmp_rtt_mean_seconds,
      v.icmp_rtt_max_seconds,
      v.icmp_rtt_stddev_seconds,
    ];
    parts.push(`rtt min/avg/max/stddev ${stats.map(ms).join('/')} ms`);
    if (v.icmp_rtt_jitter_seconds !== undefined) parts.push(`jitter ${ms(v.icmp_rtt_jitter_seconds)} ms`);
  }
  return parts.join(', ');
}
