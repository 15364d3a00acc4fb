import { z } from 'zod';

/** TLS client settings shared by the probes that speak TLS. */
export const tlsOptions = z
  .strictObject({
    caFile: z
      .string()
      .optional()
      .describe('PEM file of CA certificates to trust instead of the system store'),
    certFile: z.string().optional().describe('PEM client certificate to present (with keyFile)'),
    keyFile: z.string().optional().describe('PEM private key of the client certificate (with certFile)'),
    insecureSkipVerify: z
      .boolean()
      .default(false)
      .describe('Accept any server certificate (chain, expiry, name); expiry values are still reported'),
    serverName: z
      .string()
      .optional()
      .describe('Name sent as TLS SNI and checked against the certificate (default: the target host)'),
  })
  .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
    message: 'tls.certFile and tls.keyFile must be given together',
  })
  .describe('TLS client settings');

export type TlsOptions = z.output<typeof tlsOptions>;
