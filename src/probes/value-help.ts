/**
 * What each probe value means (`ProbeResult.values`), named as blackbox_exporter names its `probe_*`
 * gauges; the Prometheus and OTLP sinks both describe them with it.
 */
export const VALUE_HELP: Record<string, string> = {
  ip_protocol: 'Whether the probe used IPv4 or IPv6 (4 or 6)',
  http_status_code: 'HTTP status code of the last response',
  http_version: 'HTTP version of the last response',
  http_ssl: 'Whether the final request used TLS (1) or not (0)',
  http_redirects: 'Number of redirects followed',
  http_content_length: 'Content-Length of the response, -1 if absent',
  http_uncompressed_body_length: 'Bytes of response body read',
  ssl_earliest_cert_expiry: 'Unix time in seconds of the earliest certificate expiry in the chain',
  ssl_last_chain_expiry_timestamp_seconds:
    'Unix time in seconds of the earliest expiry in the verified chain',
  dns_lookup_time_seconds: 'Seconds spent resolving the host name of what was probed (as blackbox_exporter)',
  dns_answer_rrs: 'Resource records in the answer section',
  dns_authority_rrs: 'Resource records in the authority section',
  dns_additional_rrs: 'Resource records in the additional section',
  dns_rcode: 'DNS response code',
  icmp_packets_sent: 'ICMP echo requests sent in the last round',
  icmp_packets_received: 'ICMP echo replies received in the last round',
  icmp_packet_loss_ratio: 'Fraction of ICMP echo requests of the last round left unanswered',
  icmp_rtt_min_seconds: 'Smallest ICMP round-trip time of the last round',
  icmp_rtt_mean_seconds: 'Mean ICMP round-trip time of the last round',
  icmp_rtt_max_seconds: 'Largest ICMP round-trip time of the last round',
  icmp_rtt_median_seconds: 'Median ICMP round-trip time of the last round',
  icmp_rtt_stddev_seconds: 'Standard deviation of ICMP round-trip times of the last round',
  icmp_rtt_jitter_seconds: 'Mean difference between consecutive ICMP round-trip times of the last round',
  icmp_reply_hop_limit: 'Hop limit (TTL) of the ICMP reply',
};
