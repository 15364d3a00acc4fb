import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { textLines, title } from './format.js';
import { sendMail, type SmtpTls } from './smtp-client.js';
import type { AlertNotification, Notifier } from './types.js';

export interface EmailOptions {
  host: string;
  port: number;
  from: string;
  to: readonly string[];
  auth?: { user: string; pass: string };
  /** How the connection is secured; default auto (STARTTLS when offered, TLS on port 465). */
  tls?: SmtpTls;
  /** EHLO name; defaults to this host's name. */
  helo?: string;
  now?: () => number;
}

/** A header value on one line: a CR or LF in a rule name or summary must not start a new header. */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

/** RFC 2047 encoded-word when the subject is not plain ASCII. */
function encodeHeader(s: string): string {
  return /^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${Buffer.from(s).toString('base64')}?=`;
}

export function emailMessage(n: AlertNotification, opts: EmailOptions): string {
  const now = (opts.now ?? Date.now)();
  const domain = opts.from.split('@')[1] ?? 'coalmine.local';
  const headers = [
    `From: ${opts.from}`,
    `To: ${opts.to.join(', ')}`,
    `Subject: ${encodeHeader(oneLine(`${title(n)}: ${n.summary}`))}`,
    `Date: ${new Date(now).toUTCString()}`,
    `Message-ID: <${randomUUID()}@${domain}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
  ];
  return `${headers.join('\r\n')}\r\n\r\n${textLines(n).join('\r\n')}\r\n`;
}

/** Email over SMTP, through the small client in smtp-client.ts. */
export class EmailNotifier implements Notifier {
  readonly kind = 'email';
  readonly #opts: EmailOptions;
  constructor(opts: EmailOptions) {
    this.#opts = opts;
  }

  async send(n: AlertNotification, signal: AbortSignal): Promise<void> {
    const o = this.#opts;
    await sendMail(
      {
        host: o.host,
        port: o.port,
        helo: o.helo ?? hostname(),
        from: o.from,
        to: o.to,
        ...(o.auth ? { auth: o.auth } : {}),
        ...(o.tls ? { tls: o.tls } : {}),
        message: emailMessage(n, o),
      },
      signal,
    );
  }
}
