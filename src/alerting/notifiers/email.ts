import { hostname } from 'node:os';
import type MailComposer from 'nodemailer/lib/mail-composer';
import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import { isTlsErrorCode } from '../../probes/net-errors.js';
import { DeliveryError, SmtpError } from './errors.js';
import { textLines, title } from './format.js';
import type { AlertNotification, Notifier } from './types.js';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { defineNotifier, envName } from './definition.js';

/**
 * How the connection is secured:
 * - `auto` (default): TLS from the first byte on port 465; elsewhere STARTTLS when the server offers it,
 *   plain text when it does not. A password is never sent in plain text this way.
 * - `starttls`: STARTTLS, and fail if the server does not offer it.
 * - `implicit`: TLS from the first byte (SMTPS, usually port 465).
 * - `none`: plain text, password included: only for a relay on a network you trust.
 */
export type SmtpTlsMode = 'auto' | 'starttls' | 'implicit' | 'none';

export interface SmtpTls {
  mode: SmtpTlsMode;
  /** PEM CA certificates to trust instead of the system store. */
  ca?: string | Buffer;
  /** Accept any certificate (chain, expiry, name). */
  insecureSkipVerify?: boolean;
}

export interface EmailOptions {
  host: string;
  port: number;
  from: string;
  to: readonly string[];
  /** Sent with whichever of PLAIN, LOGIN and CRAM-MD5 the server offers; over TLS unless tls.mode is none. */
  auth?: { user: string; pass: string };
  /** How the connection is secured; default auto (STARTTLS when offered, TLS on port 465). */
  tls?: SmtpTls;
  /** EHLO name; defaults to this host's name. */
  helo?: string;
  now?: () => number;
}

// nodemailer is loaded when the first email goes out, so an agent without an email notifier never
// holds it (agents are kept under 80 MB RSS). Its SMTP connection and message composer, not its
// transport: that one closes without QUIT and skips AUTH when the server's EHLO lists none.
type Nodemailer = {
  SMTPConnection: typeof SMTPConnection;
  MailComposer: typeof MailComposer;
};
let nodemailer: Promise<Nodemailer> | undefined;
function loadNodemailer(): Promise<Nodemailer> {
  return (nodemailer ??= Promise.all([
    import('nodemailer/lib/smtp-connection'),
    import('nodemailer/lib/mail-composer'),
  ]).then(([c, m]) => ({ SMTPConnection: c.default, MailComposer: m.default })));
}

/** A header value on one line: a CR or LF in a rule name or summary must not start a new header. */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

/**
 * The whole message as it goes out: headers (the subject RFC 2047-encoded when it is not ASCII) and a
 * text/plain body that is 7-bit safe, quoted-printable or base64 when it holds non-ASCII text or long
 * lines, so a server without 8BITMIME takes it as it is.
 */
export async function emailMessage(n: AlertNotification, opts: EmailOptions): Promise<Buffer> {
  const { MailComposer } = await loadNodemailer();
  return new MailComposer({
    from: opts.from,
    to: [...opts.to],
    subject: oneLine(`${title(n)}: ${n.summary}`),
    date: new Date((opts.now ?? Date.now)()),
    text: `${textLines(n).join('\r\n')}\r\n`,
  })
    .compile()
    .build();
}

/** What nodemailer's errors carry besides the message. */
interface NodemailerError extends Error {
  code?: string;
  originalCode?: string;
  response?: string;
  responseCode?: number;
  command?: string;
}

/** The session step a failure or a timeout met, for its message. */
type Step = 'connecting' | 'setting up the session' | 'authenticating' | 'sending the message';

/** Email over SMTP through nodemailer's SMTP client. */
export class EmailNotifier implements Notifier {
  readonly kind = 'email';
  readonly #opts: EmailOptions;
  constructor(opts: EmailOptions) {
    this.#opts = opts;
  }

  async send(n: AlertNotification, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const o = this.#opts;
    const tls = o.tls ?? { mode: 'auto' };
    const where = `SMTP server ${o.host}:${o.port}`;
    const [{ SMTPConnection }, message] = await Promise.all([loadNodemailer(), emailMessage(n, o)]);
    signal.throwIfAborted();

    const implicit = tls.mode === 'implicit' || (tls.mode === 'auto' && o.port === 465);
    const conn = new SMTPConnection({
      host: o.host,
      port: o.port,
      secure: implicit,
      // STARTTLS whenever offered (unless none); whether a session without it may go on is decided below.
      ignoreTLS: tls.mode === 'none',
      name: o.helo ?? hostname(),
      tls: {
        ...(tls.ca !== undefined && { ca: tls.ca }),
        rejectUnauthorized: tls.insecureSkipVerify !== true,
      },
    });

    let step: Step = 'connecting';
    let cleanup = (): void => undefined;
    // Rejects on the connection's first error or on abort; every step races it.
    const failed = new Promise<never>((_, reject) => {
      const onAbort = (): void => {
        const reason = signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason));
        const doing = step === 'connecting' && conn.stage === 'connected' ? 'setting up the session' : step;
        reject(new DeliveryError(`${where}: ${reason.message} while ${doing}`, { cause: reason }));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      // Stays attached: nodemailer may emit a late error, and an 'error' nobody listens to would throw.
      conn.on('error', (err: Error) => reject(err));
      cleanup = () => signal.removeEventListener('abort', onAbort);
    });
    failed.catch(() => undefined);
    const run = <T>(start: (done: (err: Error | null, value?: T) => void) => void): Promise<T> =>
      Promise.race([
        failed,
        new Promise<T>((resolve, reject) => start((err, value) => (err ? reject(err) : resolve(value as T)))),
      ]);

    try {
      await run<void>((done) => conn.connect((err) => done(err ?? null)));
      step = 'setting up the session';
      if (!conn.secure && tls.mode !== 'none') {
        if (tls.mode === 'starttls')
          throw new DeliveryError(`${where} does not offer STARTTLS (tls: starttls)`);
        if (o.auth)
          throw new DeliveryError(
            `${where} does not offer STARTTLS: not sending the password in plain text (set tls: none to allow it, or tls: implicit for SMTPS)`,
          );
      }
      if (o.auth) {
        step = 'authenticating';
        // nodemailer takes the first of PLAIN, LOGIN and CRAM-MD5 the server lists (PLAIN when it lists none).
        await run<unknown>((done) => conn.login({ user: o.auth!.user, pass: o.auth!.pass }, done));
      }
      step = 'sending the message';
      // A recipient the server refuses is skipped; only when it refuses all of them does this throw.
      await run<unknown>((done) => conn.send({ from: o.from, to: [...o.to] }, message, done));
      // Delivered already: a QUIT that goes wrong changes nothing.
      await run<void>((done) => {
        conn.once('end', () => done(null));
        conn.quit();
      }).catch(() => undefined);
    } catch (err) {
      throw describeFailure(err, where, step);
    } finally {
      cleanup();
      conn.close();
    }
  }
}

/** Turns what nodemailer threw into our errors: SmtpError for a refusal, DeliveryError for the rest. */
function describeFailure(err: unknown, where: string, step: Step): Error {
  if (err instanceof DeliveryError || err instanceof SmtpError || !(err instanceof Error))
    return err as Error;
  const e = err as NodemailerError;
  if (e.responseCode !== undefined && e.responseCode >= 400 && e.response !== undefined) {
    // CONN: a reply to no command of ours (the greeting, or a 421 that closes the session).
    const command = e.command === undefined || e.command === 'CONN' ? 'connection' : e.command;
    return new SmtpError(command, e.responseCode, e.response.replace(/^\d{3}[ -]/, ''), { cause: err });
  }
  const tlsFailure = e.code === 'ETLS' || isTlsErrorCode(e.originalCode ?? '');
  if (tlsFailure) {
    const reason = e.message.replace(/^Error initiating TLS - /, '');
    return new DeliveryError(`TLS with ${where} failed: ${reason}`, { cause: err });
  }
  return new DeliveryError(`${where}: ${e.message} while ${step}`, { cause: err });
}

function readCaFile(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read caFile ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export const emailNotifier = defineNotifier({
  kind: 'email',
  summary: 'Email over SMTP',
  options: z.strictObject({
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
  }),
  secrets: [{ key: 'password', required: false }],
  check: (o) =>
    (o.password !== undefined || o.passwordEnv !== undefined) && o.user === undefined
      ? [{ key: 'user', message: 'a password needs a user' }]
      : [],
  create: (e, secrets) => {
    const pass = secrets.text('password');
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
  },
});
