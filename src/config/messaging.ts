import { z } from 'zod';
import { allSchemes, transportKindOf } from '../transports/registry.js';

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const name = (what: string) =>
  z
    .string()
    .regex(NAME, `a ${what} name is 1-64 letters, digits, "_", "." or "-"`)
    .describe(`Unique ${what} name`);

/** A rate: a number per second, or `N/s`, `N/m`, `N/h`. Parsed to pings per second. */
export const rateSchema = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const m =
      typeof v === 'number'
        ? [String(v), String(v), 's']
        : // Trimmed first: around an optional part, two \s* over the same spaces backtrack quadratically.
          /^(\d+(?:\.\d+)?)(?:\s*\/\s*([smh]))?$/.exec(v.trim());
    const per = { s: 1, m: 60, h: 3600 }[(m?.[2] ?? 's') as 's' | 'm' | 'h'];
    const rate = m ? Number(m[1]) / per : NaN;
    if (!(rate >= 1 / 60 && rate <= 1_000_000)) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a rate from 1/m to 1000000/s, like 10, "10/s" or "2/m" (got ${JSON.stringify(v)})`,
      });
      return z.NEVER;
    }
    return rate;
  })
  .describe('Pings per second to each coalminer: a number, or "N/s", "N/m", "N/h"');

export const transportUrl = z
  .string()
  .refine((u) => transportKindOf(u) !== undefined, {
    message: `unsupported transport URL: the scheme must be one of ${allSchemes()
      .map((s) => `${s}://`)
      .join(', ')}`,
  })
  .describe(
    'Transport URL, e.g. redis://127.0.0.1:6379, amqp://guest:guest@127.0.0.1:5672, nats://127.0.0.1:4222',
  );

export const transportEntry = z.strictObject({
  name: name('transport'),
  url: transportUrl,
});

/** A transport named in `transports`, or a URL used directly. */
const transportRef = z.string().min(1).describe('The name of an entry in `transports`, or a transport URL');

/** An entry of a canary's `allow`: a coalminer name, or a glob over names with `*` and `?`. */
export const allowEntry = z
  .string()
  .regex(
    /^[A-Za-z0-9_.*?-]{1,64}$/,
    'an allow entry is a coalminer name, or a glob over names with "*" and "?"',
  );

/** Where a canary's or coalminer's shared secret comes from (read when the config loads). */
const secretEnv = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
  .optional()
  .describe(
    'Environment variable holding a secret shared by the canaries and coalminers that talk to each other (16 characters or more): every message is signed with it and unsigned ones are refused',
  );

export const canaryEntry = z.strictObject({
  name: name('canary'),
  transport: transportRef,
  rate: rateSchema.default(1),
  size: z.number().int().min(0).max(1_048_576).default(0).describe('Pad each ping to this many bytes'),
  echo: z
    .boolean()
    .default(false)
    .describe('Ask coalminers to echo each ping, for round-trip time on one clock'),
  coalminers: z
    .array(name('coalminer'))
    .default([])
    .describe('Coalminers to ping without waiting for them to register'),
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default('coalmine')
    .describe('Channel name prefix'),
  lease: z
    .number()
    .min(1, 'must be from 1 to 86400 seconds')
    .max(86_400, 'must be from 1 to 86400 seconds')
    .optional()
    .describe('Seconds a registration lasts without renewal (default 30), 1 to 86400'),
  maxCoalminers: z
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(100)
    .describe(
      'Most coalminers pinged at once, the static ones included; registrations beyond it are refused',
    ),
  allow: z
    .array(allowEntry)
    .min(1)
    .optional()
    .describe(
      'Coalminers that may register: names, or globs where * is any run of characters and ? one ("eu-*"); unset: any name, within maxCoalminers. The static coalminers need no entry',
    ),
  secretEnv,
});

export const coalminerEntry = z.strictObject({
  name: name('coalminer'),
  transport: transportRef,
  register: z.array(name('canary')).min(1).describe('Canaries to register with'),
  region: z.string().max(64).default('').describe('Region label of this coalminer (e.g. eu-west-1)'),
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default('coalmine')
    .describe('Channel name prefix'),
  lossTimeout: z
    .number()
    .min(0.01, 'must be from 0.01 to 3600 seconds')
    .max(3600, 'must be from 0.01 to 3600 seconds')
    .default(5)
    .describe('Seconds before a missing ping is declared lost, 0.01 to 3600'),
  reorderWindow: z
    .number()
    .int('must be a whole number from 1 to 1000000')
    .min(1, 'must be from 1 to 1000000')
    .max(1_000_000, 'must be from 1 to 1000000')
    .default(1000)
    .describe(
      'Sequence numbers a missing ping may trail by before it is declared lost, 1 to 1000000 (each flow keeps a bitmap of 2 x this many, at most 256 KiB)',
    ),
  secretEnv,
});

export type TransportEntry = z.output<typeof transportEntry>;
export type CanaryEntry = z.output<typeof canaryEntry>;
export type CoalminerEntry = z.output<typeof coalminerEntry>;

/** What every resolved canary and coalminer entry has: its transport's name, and its secret if any. */
interface Resolved {
  transportName: string;
  /** The shared secret `secretEnv` names, read when the config loaded. */
  secret?: string;
}

export interface MessagingConfig {
  /** Every transport by name; entries given as bare URLs get the URL as their name. */
  transports: Map<string, string>;
  canaries: (CanaryEntry & Resolved)[];
  coalminers: (CoalminerEntry & Resolved)[];
}

/** Shorter shared secrets are refused: they could be guessed from a signed message. */
export const MIN_SECRET_LENGTH = 16;
