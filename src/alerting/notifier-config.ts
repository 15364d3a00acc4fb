import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { describeRange, durationMs } from '../config/duration.js';
import { AlertmanagerNotifier } from './notifiers/alertmanager.js';
import { EmailNotifier } from './notifiers/email.js';
import { PagerDutyNotifier } from './notifiers/pagerduty.js';
import { SlackNotifier } from './notifiers/slack.js';
import type { Notifier } from './notifiers/types.js';
import { WebhookNotifier } from './notifiers/webhook.js';

/** One delivery attempt: long enough for a slow SMTP server, short enough to retry in time. */
const DELIVERY_TIMEOUT = { min: 100, max: 300_000 };

const NOTIFIER_KINDS = ['webhook', 'slack', 'email', 'alertmanager', 'pagerduty'] as const;
export type NotifierKind = (typeof NOTIFIER_KINDS)[number];

const httpUrl = (what: string) =>
  z.string().refine((s) => {
    try {
      const u = new URL(s);
      return u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      return false;
    }
  }, `expected an http:// or https:// URL (${what})`);

/** An environment variable's name: where a secret is read from at start, so it stays out of the file. */
const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name, e.g. SLACK_WEBHOOK_URL');

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

const webhook = z.strictObject({
  url: httpUrl('the receiver').optional(),
  urlEnv: envName.optional(),
  secret: z.string().min(16, 'use a secret of at least 16 characters').optional(),
  secretEnv: envName.optional().describe('Environment variable holding the HMAC secret'),
});
const slack = z.strictObject({
  url: httpUrl('the incoming-webhook URL').optional(),
  urlEnv: envName.optional().describe('Environment variable holding the incoming-webhook URL'),
});
const email = z.strictObject({
  host: z.string().min(1).describe('SMTP server'),
  port: z.number().int().min(1).max(65535).default(25),
  from: z.email('from must be an email address'),
  to: z.array(z.email('each of to must be an email address')).min(1, 'to needs at least one address'),
  user: z.string().min(1).optional().describe('SMTP AUTH user (PLAIN, LOGIN or CRAM-MD5)'),
  password: z.string().optional(),
  passwordEnv: envName.optional(),
  tls: z
    .enum(['auto', 'starttls', 'implicit', 'none'], {
      error: 'tls is one of auto, starttls, implicit, none',
    })
    .default('auto')
    .describe(
      'auto: TLS on port 465, else STARTTLS when offered (a password is never sent in plain text); starttls: require it; implicit: SMTPS; none: plain text',
    ),
  caFile: z.string().min(1).optional().describe('PEM CA certificates to trust instead of the system store'),
  insecureSkipVerify: z.boolean().default(false).describe('Accept any server certificate'),
});
const alertmanager = z.strictObject({
  url: httpUrl("Alertmanager's base URL, e.g. http://alertmanager:9093"),
});
const pagerduty = z.strictObject({
  routingKey: z.string().min(1).optional(),
  routingKeyEnv: envName.optional(),
  url: httpUrl('the Events API v2 endpoint').optional(),
  severity: z.enum(['critical', 'error', 'warning', 'info']).default('error'),
  source: z.string().min(1).optional(),
});

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
      webhook: webhook.optional().describe('Generic webhook: JSON body signed with HMAC-SHA256'),
      slack: slack.optional().describe('Slack-compatible incoming webhook'),
      email: email.optional().describe('Email over SMTP'),
      alertmanager: alertmanager.optional().describe("Alertmanager's v2 API"),
      pagerduty: pagerduty.optional().describe('PagerDuty Events API v2'),
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
          ? `unknown field ${iss.keys.map((k) => JSON.stringify(k)).join(', ')} (allowed: name, ${NOTIFIER_KINDS.join(', ')}, timeout, maxAttempts)`
          : undefined,
    },
  )
  .superRefine((n, ctx) => {
    const kinds = NOTIFIER_KINDS.filter((k) => n[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `a notifier has exactly one of ${NOTIFIER_KINDS.join(', ')}${kinds.length ? ` (got ${kinds.join(', ')})` : ''}`,
      });
      return;
    }
    const kind = kinds[0]!;
    const o = n[kind] as Record<string, unknown>;
    const checks: [string, boolean][] = {
      webhook: [
        ['url', true],
        ['secret', true],
      ],
      slack: [['url', true]],
      email: [['password', false]],
      alertmanager: [],
      pagerduty: [['routingKey', true]],
    }[kind] as [string, boolean][];
    for (const [key, required] of checks) {
      const msg = oneOf(o, key, required);
      if (msg) ctx.addIssue({ code: 'custom', path: [kind, key], message: msg });
    }
    if (kind === 'email' && (o.password !== undefined || o.passwordEnv !== undefined) && o.user === undefined)
      ctx.addIssue({ code: 'custom', path: [kind, 'user'], message: 'a password needs a user' });
    if (n.timeout !== undefined && n.timeout <= 0)
      ctx.addIssue({ code: 'custom', path: ['timeout'], message: 'timeout must be above 0' });
  });

export type NotifierConfig = z.output<typeof notifierSchema>;

export function notifierKind(n: NotifierConfig): NotifierKind {
  return NOTIFIER_KINDS.find((k) => n[k] !== undefined)!;
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

function readCaFile(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read caFile ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Builds the notifier a config entry describes, reading secrets from `env`. Throws an Error whose message
 * says what is missing (an unset environment variable, an invalid URL in one).
 */
export function createNotifier(n: NotifierConfig, env: NodeJS.ProcessEnv = process.env): Notifier {
  const kind = notifierKind(n);
  const o = n[kind] as Record<string, unknown>;
  const url = (key: string) => {
    const v = secretOf(o, key, env)!;
    const ok = httpUrl('').safeParse(v).success;
    if (!ok) throw new Error(`${key}Env: the variable holds no http:// or https:// URL`);
    return v;
  };
  switch (kind) {
    case 'webhook':
      return new WebhookNotifier({ url: url('url'), secret: secretOf(o, 'secret', env)! });
    case 'slack':
      return new SlackNotifier({ url: url('url') });
    case 'email': {
      const e = n.email!;
      const pass = secretOf(o, 'password', env);
      return new EmailNotifier({
        host: e.host,
        port: e.port,
        from: e.from,
        to: e.to,
        ...(e.user !== undefined && { auth: { user: e.user, pass: pass ?? '' } }),
        tls: {
          mode: e.tls,
          ...(e.caFile !== undefined && { ca: readCaFile(e.caFile) }),
          insecureSkipVerify: e.insecureSkipVerify,
        },
      });
    }
    case 'alertmanager':
      return new AlertmanagerNotifier({ url: n.alertmanager!.url });
    case 'pagerduty': {
      const p = n.pagerduty!;
      return new PagerDutyNotifier({
        routingKey: secretOf(o, 'routingKey', env)!,
        severity: p.severity,
        ...(p.url !== undefined && { url: p.url }),
        ...(p.source !== undefined && { source: p.source }),
      });
    }
  }
}
