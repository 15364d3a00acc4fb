import { z } from 'zod';

/** A token shorter than this is a password, not a token: refuse it rather than protect nothing. */
export const MIN_TOKEN_LENGTH = 20;

export const scopeSchema = z
  .enum(['read', 'write'])
  .describe('read: every GET; write: also POST /check and creating or ending silences');

const tokenEntry = z
  .strictObject({
    name: z
      .string()
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/,
        'a token name is 1-64 letters, digits, "_", ".", ":" or "-"',
      )
      .describe('Who holds this token; shown in logs, never the token itself'),
    token: z
      .string()
      .min(
        MIN_TOKEN_LENGTH,
        `a token must be at least ${MIN_TOKEN_LENGTH} characters of random text (\`coalmine token\` or \`openssl rand -hex 32\`)`,
      )
      .optional()
      .describe('The bearer token itself. Prefer sha256 so the config holds no secret'),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'sha256 is the 64 hex digits of the SHA-256 of the token')
      .optional()
      .describe('Hex SHA-256 of the bearer token (`printf %s TOKEN | sha256sum`)'),
    scopes: z.array(scopeSchema).min(1).default(['read']).describe('What the token may do; default [read]'),
  })
  .refine((t) => (t.token === undefined) !== (t.sha256 === undefined), {
    message: 'give exactly one of token or sha256',
  });

export const apiConfigSchema = z
  .strictObject({
    tokens: z
      .array(tokenEntry)
      .default([])
      .refine((ts) => new Set(ts.map((t) => t.name)).size === ts.length, 'token names must be unique')
      .describe('Bearer tokens of the HTTP API. COALMINE_API_TOKEN adds one with read and write scopes'),
    rateLimit: z
      .strictObject({
        perSecond: z.number().positive().max(100_000).default(20).describe('Requests per second refilled'),
        burst: z.number().int().min(1).max(100_000).default(100).describe('Requests allowed at once'),
      })
      .optional()
      .describe('Per-client (per remote address) token bucket; over it, 429 with Retry-After'),
    maxBodyBytes: z
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 * 1024)
      .optional()
      .describe('Largest request body accepted; default 64 KiB'),
    maxEventClients: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .optional()
      .describe('Most simultaneous /api/v1/events streams; default 64'),
    checkNow: z
      .strictObject({
        perSecond: z.number().positive().max(10_000).default(1).describe('Probe runs per second refilled'),
        burst: z.number().int().min(1).max(100_000).default(20).describe('Probe runs allowed at once'),
      })
      .optional()
      .describe(
        'One budget of probes run on demand (POST /check and POST /api/v1/check), shared by every client; over it, 429 with Retry-After. Default 1 a second, 20 at once',
      ),
    maxConnections: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .optional()
      .describe(
        'Most HTTP connections open at once (default 512); never more than half the open-file limit, so probes keep descriptors',
      ),
    maxConnectionsPerClient: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .optional()
      .describe('Most HTTP connections from one client address (an IPv6 /64 counts as one); default 64'),
  })
  .describe('The HTTP API (/api/v1) and dashboard');

export type ApiConfig = z.infer<typeof apiConfigSchema>;
export type ApiConfigInput = z.input<typeof apiConfigSchema>;
export type Scope = z.infer<typeof scopeSchema>;
