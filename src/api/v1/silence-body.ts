import type { NewSilence } from './contract.js';
import { HttpError } from './http.js';

/** The longest a silence may last: one that outlives everyone's memory of it hides real outages. */
export const MAX_SILENCE_MS = 90 * 86_400_000;
export const MAX_MATCHERS = 32;
export const MAX_LABEL_NAME = 128;
export const MAX_MATCHER_VALUE = 1024;
export const MAX_COMMENT = 1000;
export const MAX_CREATED_BY = 100;
export const DEFAULT_CREATED_BY = 'api';

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FIELDS: readonly (keyof NewSilence)[] = [
  'matchers',
  'endsAt',
  'durationSeconds',
  'comment',
  'createdBy',
];
const EXAMPLE = '{"matchers": {"alertname": "web-slow"}, "durationSeconds": 3600, "comment": "deploy"}';

/** What the router hands to ApiAlerts.addSilence: checked, with the end as a time. */
export interface CheckedSilence {
  matchers: Record<string, string>;
  endsAt: number;
  comment: string;
  createdBy: string;
}

function invalid(field: string, message: string): HttpError {
  return new HttpError(400, 'invalid_body', `"${field}" ${message}`);
}

const shown = (v: unknown) => JSON.stringify(v)?.slice(0, 60) ?? String(v);

/**
 * Checks a POST /silences body (parsed JSON) strictly and turns durationSeconds into endsAt. Every
 * refusal is a 400 whose message starts with the field at fault.
 */
export function parseNewSilence(body: unknown, now: number): CheckedSilence {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'invalid_body', `the body must be a JSON object such as ${EXAMPLE}`);
  }
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b)) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      throw invalid(key, `is not a field of a silence (allowed: ${FIELDS.join(', ')})`);
    }
  }

  const m = b.matchers;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) {
    throw invalid('matchers', `must be an object of label name to value, such as {"alertname": "web-slow"}`);
  }
  const entries = Object.entries(m as Record<string, unknown>);
  if (entries.length === 0) {
    throw invalid('matchers', 'needs at least one matcher: a silence without one would mute every rule');
  }
  if (entries.length > MAX_MATCHERS)
    throw invalid('matchers', `has ${entries.length}; at most ${MAX_MATCHERS}`);
  for (const [name, value] of entries) {
    if (name.length > MAX_LABEL_NAME || !LABEL_NAME.test(name)) {
      throw invalid(
        `matchers.${name.slice(0, 60)}`,
        `is not a label name: one is [a-zA-Z_][a-zA-Z0-9_]*, at most ${MAX_LABEL_NAME} characters`,
      );
    }
    // Reserved, as in Prometheus; and "__proto__" must never reach an object as a key.
    if (name.startsWith('__')) throw invalid(`matchers.${name}`, 'is reserved: label names starting with __');
    if (typeof value !== 'string') throw invalid(`matchers.${name}`, `must be a string, not ${shown(value)}`);
    if (value.length > MAX_MATCHER_VALUE) {
      throw invalid(`matchers.${name}`, `is ${value.length} characters; at most ${MAX_MATCHER_VALUE}`);
    }
  }
  const matchers = Object.fromEntries(entries) as Record<string, string>;

  const hasEnd = b.endsAt !== undefined;
  const hasDuration = b.durationSeconds !== undefined;
  if (hasEnd === hasDuration) {
    throw invalid(
      hasEnd ? 'endsAt' : 'durationSeconds',
      hasEnd
        ? 'and "durationSeconds" are both given; give exactly one'
        : 'or "endsAt" is required: how long the silence lasts, or when it ends (Unix ms)',
    );
  }
  const maxDays = MAX_SILENCE_MS / 86_400_000;
  let endsAt: number;
  if (hasEnd) {
    const e = b.endsAt;
    if (typeof e !== 'number' || !Number.isSafeInteger(e) || e < 0) {
      throw invalid('endsAt', `must be Unix milliseconds (a whole number), not ${shown(e)}`);
    }
    if (e <= now) throw invalid('endsAt', `(${e}) is not in the future; it is now ${now}`);
    if (e - now > MAX_SILENCE_MS) throw invalid('endsAt', `is more than ${maxDays} days from now`);
    endsAt = e;
  } else {
    const d = b.durationSeconds;
    if (typeof d !== 'number' || !Number.isFinite(d)) {
      throw invalid('durationSeconds', `must be a number of seconds, not ${shown(d)}`);
    }
    if (d <= 0) throw invalid('durationSeconds', `must be more than 0, not ${d}`);
    if (d * 1000 > MAX_SILENCE_MS) {
      throw invalid('durationSeconds', `is ${d}; at most ${MAX_SILENCE_MS / 1000} (${maxDays} days)`);
    }
    endsAt = now + Math.max(1, Math.round(d * 1000));
  }

  const comment = b.comment ?? '';
  if (typeof comment !== 'string') throw invalid('comment', `must be a string, not ${shown(comment)}`);
  if (comment.length > MAX_COMMENT) {
    throw invalid('comment', `is ${comment.length} characters; at most ${MAX_COMMENT}`);
  }
  const createdBy = b.createdBy ?? DEFAULT_CREATED_BY;
  if (typeof createdBy !== 'string' || createdBy.trim() === '') {
    throw invalid('createdBy', `must be a non-empty string, not ${shown(createdBy)}`);
  }
  if (createdBy.length > MAX_CREATED_BY) {
    throw invalid('createdBy', `is ${createdBy.length} characters; at most ${MAX_CREATED_BY}`);
  }
  return { matchers, endsAt, comment, createdBy };
}
