import { z } from 'zod';
import { describeRange, durationMs } from '../config/duration.js';
import { isHttpUrl, type SecretReader } from './notifiers/definition.js';
import { notifierKinds, notifiers, type NotifierKind } from './notifiers/registry.js';
import type { Notifier } from './notifiers/types.js';

export type { NotifierKind } from './notifiers/registry.js';

/** One delivery attempt: long enough for a slow SMTP server, short enough to retry in time. */
const DELIVERY_TIMEOUT = { min: 100, max: 300_000 };

/** Each kind's block, optional: a notifier has exactly one (checked in superRefine below). */
const kindBlocks = Object.fromEntries(
  notifierKinds.map((k) => [k, notifiers[k].options.optional().describe(notifiers[k].summary)]),
) as { [K in NotifierKind]: z.ZodOptional<(typeof notifiers)[K]['options']> };

/**
 * A secret given either in the file (`secret: ...`) or by naming an environment variable
 * (`secretEnv: NAME`); exactly one, checked in `superRefine` below.
 */
function oneOf(o: Record<string, unknown>, key: string, required: boolean): string | undefined {
  const inFile = o[key] !== undefined;
  const fromEnv = o[`${key}Env`] !== undefined;
  if (inFile && fromEnv) return `give ${key} or ${key}Env, not both`;
  if (required && !inFile && !fromEnv)
    return `${key} (or ${key}Env, naming an environment variable) is required`;
  return undefined;
}

export const notifierSchema = z
  .strictObject(
    {
      name: z
        .string()
        .regex(
          /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/,
          'a notifier name is 1-64 letters, digits, "_", ".", ":" or "-"',
        )
        .describe('Name used by rules (notify: [name]) and in metrics'),
      ...kindBlocks,
      timeout: durationMs('a duration', DELIVERY_TIMEOUT)
        .optional()
        .describe(
          `Each delivery attempt is aborted after this long (10s), ${describeRange(DELIVERY_TIMEOUT)}`,
        ),
      maxAttempts: z.number().int().min(1).max(20).default(5).describe('Attempts per notification'),
    },
    {
      error: (iss): string | undefined =>
        iss.code === 'unrecognized_keys'
          ? `unknown field ${iss.keys.map((k) => JSON.stringify(k)).join(', ')} (allowed: name, ${notifierKinds.join(', ')}, timeout, maxAttempts)`
          : undefined,
    },
  )
  .superRefine((n, ctx) => {
    const kinds = notifierKinds.filter((k) => n[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `a notifier has exactly one of ${notifierKinds.join(', ')}${kinds.length ? ` (got ${kinds.join(', ')})` : ''}`,
      });
      return;
    }
    const kind = kinds[0]!;
    const def = notifiers[kind];
    const o = n[kind] as Record<string, unknown>;
    for (const { key, required } of def.secrets ?? []) {
      const msg = oneOf(o, key, required);
      if (msg) ctx.addIssue({ code: 'custom', path: [kind, key], message: msg });
    }
    const check = (def as { check?: (o: Record<string, unknown>) => { key: string; message: string }[] })
      .check;
    for (const { key, message } of check?.(o) ?? [])
      ctx.addIssue({ code: 'custom', path: [kind, key], message });
    if (n.timeout !== undefined && n.timeout <= 0)
      ctx.addIssue({ code: 'custom', path: ['timeout'], message: 'timeout must be above 0' });
  });

export type NotifierConfig = z.output<typeof notifierSchema>;

export function notifierKind(n: NotifierConfig): NotifierKind {
  return notifierKinds.find((k) => n[k] !== undefined)!;
}

/** Reads `key` or the variable `keyEnv` names; throws a message for the config error when it is unset. */
function secretOf(o: Record<string, unknown>, key: string, env: NodeJS.ProcessEnv): string | undefined {
  if (typeof o[key] === 'string') return o[key];
  const name = o[`${key}Env`];
  if (typeof name !== 'string') return undefined;
  const v = env[name];
  if (v === undefined || v === '') throw new Error(`environment variable ${name} (${key}Env) is not set`);
  return v;
}

/**
 * Builds the notifier a config entry describes, reading secrets from `env`. Throws an Error whose message
 * says what is missing (an unset environment variable, an invalid URL in one).
 */
export function createNotifier(n: NotifierConfig, env: NodeJS.ProcessEnv = process.env): Notifier {
  const kind = notifierKind(n);
  const o = n[kind] as Record<string, unknown>;
  const secrets: SecretReader = {
    text: (key) => secretOf(o, key, env),
    url: (key) => {
      const v = secretOf(o, key, env)!;
      if (!isHttpUrl(v)) throw new Error(`${key}Env: the variable holds no http:// or https:// URL`);
      return v;
    },
  };
  // Each kind's create takes its own block; the table's union of them is what TypeScript sees here.
  const create = notifiers[kind].create as (options: unknown, secrets: SecretReader) => Notifier;
  return create(o, secrets);
}

/** How often the engine re-sends a firing alert to a notifier of this kind; undefined: never. */
export function resendFiringMs(kind: NotifierKind): number | undefined {
  return (notifiers[kind] as { resendFiringMs?: number }).resendFiringMs;
}
