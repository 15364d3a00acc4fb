import { z } from 'zod';
import type { NewSilence } from './contract.js';
import { HttpError } from './http.js';
import { named } from './schemas.js';

/** The longest a silence may last: one that outlives everyone's memory of it hides real outages. */
export const MAX_SILENCE_MS = 90 * 86_400_000;
export const MAX_MATCHERS = 32;
export const MAX_LABEL_NAME = 128;
export const MAX_MATCHER_VALUE = 1024;
export const MAX_COMMENT = 1000;
export const MAX_CREATED_BY = 100;
export const DEFAULT_CREATED_BY = 'api';

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FIELDS = ['matchers', 'endsAt', 'durationSeconds', 'comment', 'createdBy'] as const;
const EXAMPLE = '{"matchers": {"alertname": "web-slow"}, "durationSeconds": 3600, "comment": "deploy"}';
const MAX_DAYS = MAX_SILENCE_MS / 86_400_000;

const shown = (v: unknown) => JSON.stringify(v)?.slice(0, 60) ?? String(v);
/** Every message starts with the field at fault. */
const not = (field: string, what: string) => (iss: { input?: unknown }) =>
  `"${field}" ${what}, not ${shown(iss.input)}`;

// Checked as parsed, before zod copies it: a "__proto__" key must be seen to be refused.
const matchers = z
  .unknown()
  .superRefine((m, ctx) => {
    const fail = (field: string, message: string) =>
      ctx.addIssue({ code: 'custom', message: `"${field}" ${message}` });
    if (typeof m !== 'object' || m === null || Array.isArray(m))
      return fail('matchers', 'must be an object of label name to value, such as {"alertname": "web-slow"}');
    const entries = Object.entries(m);
    if (entries.length === 0)
      return fail('matchers', 'needs at least one matcher: a silence without one would mute every rule');
    if (entries.length > MAX_MATCHERS)
      return fail('matchers', `has ${entries.length}; at most ${MAX_MATCHERS}`);
    for (const [name, value] of entries) {
      if (name.length > MAX_LABEL_NAME || !LABEL_NAME.test(name)) {
        return fail(
          `matchers.${name.slice(0, 60)}`,
          `is not a label name: one is [a-zA-Z_][a-zA-Z0-9_]*, at most ${MAX_LABEL_NAME} characters`,
        );
      }
      // Reserved, as in Prometheus; and "__proto__" must never reach an object as a key.
      if (name.startsWith('__')) return fail(`matchers.${name}`, 'is reserved: label names starting with __');
      if (typeof value !== 'string') return fail(`matchers.${name}`, `must be a string, not ${shown(value)}`);
      if (value.length > MAX_MATCHER_VALUE)
        return fail(`matchers.${name}`, `is ${value.length} characters; at most ${MAX_MATCHER_VALUE}`);
    }
  })
  .pipe(z.record(z.string(), z.string()))
  .meta({
    description: 'Mutes every rule whose labels equal all of these; label names do not start with __',
    type: 'object',
    minProperties: 1,
    maxProperties: MAX_MATCHERS,
    propertyNames: { pattern: LABEL_NAME.source, maxLength: MAX_LABEL_NAME },
    additionalProperties: { type: 'string', maxLength: MAX_MATCHER_VALUE },
  });

/** The POST /silences body (NewSilence in contract.ts); the handler checks endsAt against the clock. */
export const newSilenceSchema = named(
  'NewSilence',
  z
    .strictObject(
      {
        matchers,
        endsAt: z
          .number({ error: not('endsAt', 'must be Unix milliseconds (a whole number)') })
          .int({ error: not('endsAt', 'must be Unix milliseconds (a whole number)') })
          .min(0, { error: not('endsAt', 'must be Unix milliseconds (a whole number)') })
          .max(Number.MAX_SAFE_INTEGER, {
            error: not('endsAt', 'must be Unix milliseconds (a whole number)'),
          })
          .optional()
          .describe(`Unix ms, in the future, at most ${MAX_DAYS} days ahead`),
        durationSeconds: z
          .number({ error: not('durationSeconds', 'must be a number of seconds') })
          .gt(0, { error: (iss) => `"durationSeconds" must be more than 0, not ${shown(iss.input)}` })
          .max(MAX_SILENCE_MS / 1000, {
            error: (iss) =>
              `"durationSeconds" is ${shown(iss.input)}; at most ${MAX_SILENCE_MS / 1000} (${MAX_DAYS} days)`,
          })
          .optional(),
        comment: z
          .string({ error: not('comment', 'must be a string') })
          .max(MAX_COMMENT, {
            error: (iss) => `"comment" is ${String(iss.input).length} characters; at most ${MAX_COMMENT}`,
          })
          .optional(),
        createdBy: z
          .string({ error: not('createdBy', 'must be a non-empty string') })
          .refine((s) => s.trim() !== '', { error: not('createdBy', 'must be a non-empty string') })
          .refine((s) => s.length <= MAX_CREATED_BY, {
            error: (iss) =>
              `"createdBy" is ${String(iss.input).length} characters; at most ${MAX_CREATED_BY}`,
          })
          .optional()
          .describe(`Default "${DEFAULT_CREATED_BY}"; at most ${MAX_CREATED_BY} characters`),
      },
      {
        error: (iss) =>
          iss.code === 'unrecognized_keys'
            ? `"${iss.keys[0]}" is not a field of a silence (allowed: ${FIELDS.join(', ')})`
            : `the body must be a JSON object such as ${EXAMPLE}`,
      },
    )
    .superRefine((b, ctx) => {
      const hasEnd = b.endsAt !== undefined;
      if (hasEnd !== (b.durationSeconds !== undefined)) return;
      ctx.addIssue({
        code: 'custom',
        message: hasEnd
          ? '"endsAt" and "durationSeconds" are both given; give exactly one'
          : '"durationSeconds" or "endsAt" is required: how long the silence lasts, or when it ends (Unix ms)',
      });
    })
    .describe('Exactly one of endsAt and durationSeconds'),
);

/** What the route hands to AlertControl.addSilence: checked, with the end as a time. */
export interface CheckedSilence {
  matchers: Record<string, string>;
  endsAt: number;
  comment: string;
  createdBy: string;
}

/** The end of a valid body as a time, checked against now; a refusal is a 400 naming the field. */
export function checkedSilence(b: z.output<typeof newSilenceSchema>, now: number): CheckedSilence {
  let endsAt: number;
  if (b.endsAt !== undefined) {
    if (b.endsAt <= now) throw invalid('endsAt', `(${b.endsAt}) is not in the future; it is now ${now}`);
    if (b.endsAt - now > MAX_SILENCE_MS) throw invalid('endsAt', `is more than ${MAX_DAYS} days from now`);
    endsAt = b.endsAt;
  } else {
    endsAt = now + Math.max(1, Math.round(b.durationSeconds! * 1000));
  }
  return {
    matchers: b.matchers,
    endsAt,
    comment: b.comment ?? '',
    createdBy: b.createdBy ?? DEFAULT_CREATED_BY,
  };
}

function invalid(field: string, message: string): HttpError {
  return new HttpError(400, 'invalid_body', `"${field}" ${message}`);
}

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const bodyMatchesType: Same<z.output<typeof newSilenceSchema>, NewSilence> = true;
void bodyMatchesType;
