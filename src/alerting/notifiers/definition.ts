import { z } from 'zod';
import type { Notifier } from './types.js';

/**
 * Reads a notifier's secrets: each is given in the file (`key: ...`) or by naming an environment
 * variable (`keyEnv: NAME`). Throws an Error saying what to fix when the variable is unset or holds no
 * URL where one is needed.
 */
export interface SecretReader {
  /** The value of `key` (from the file or its variable); undefined when neither is given. */
  text(key: string): string | undefined;
  /** Like text, for a secret that must be an http(s) URL (a variable's value is checked here). */
  url(key: string): string;
}

/**
 * One notifier kind: its config block, how it is built, and what the alert engine does for it beyond
 * sending. Each kind's module exports one; src/alerting/notifiers/registry.ts lists them.
 */
export interface NotifierDefinition<S extends z.ZodRawShape = z.ZodRawShape> {
  /** The config key of the kind's block (`webhook:`, `email:`, ...). */
  readonly kind: string;
  /** One line for --help and the config schema. */
  readonly summary: string;
  /** The block's fields: a strict object. */
  readonly options: z.ZodObject<S>;
  /** Fields that may come from an environment variable instead (`keyEnv`), and whether one is required. */
  readonly secrets?: readonly { key: string; required: boolean }[];
  /** Checks across fields: a message for each field at fault. */
  check?(options: z.output<z.ZodObject<S>>): { key: string; message: string }[];
  /**
   * Firing alerts are sent again this often while they fire (Alertmanager forgets an alert it has not
   * heard of within its resolve_timeout). Unset: each state change is sent once.
   */
  readonly resendFiringMs?: number;
  create(options: z.output<z.ZodObject<S>>, secrets: SecretReader): Notifier;
}

export function defineNotifier<S extends z.ZodRawShape>(def: NotifierDefinition<S>): NotifierDefinition<S> {
  return def;
}

/** An http:// or https:// URL; `what` says which, in the message. */
export const httpUrl = (what: string) =>
  z.string().refine((s) => isHttpUrl(s), `expected an http:// or https:// URL (${what})`);

export function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** An environment variable's name: where a secret is read from at start, so it stays out of the file. */
export const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name, e.g. SLACK_WEBHOOK_URL');
