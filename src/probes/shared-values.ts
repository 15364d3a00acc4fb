/** Values more than one probe kind reports (ProbeDefinition.values), with one meaning. */

export const IP_PROTOCOL = { ip_protocol: 'Whether the probe used IPv4 or IPv6 (4 or 6)' };

/** The values of a TLS handshake's certificate chain (HTTPS, TCP with tls). */
export const TLS_CHAIN = {
  ssl_earliest_cert_expiry: 'Unix time in seconds of the earliest certificate expiry in the chain',
  ssl_last_chain_expiry_timestamp_seconds:
    'Unix time in seconds of the earliest expiry in the verified chain',
};
