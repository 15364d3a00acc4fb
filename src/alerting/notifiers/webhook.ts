import { createHmac } from 'node:crypto';
import { postJson } from './http.js';
import type { AlertNotification, Notifier } from './types.js';

export interface WebhookOptions {
  url: string;
  /** Shared secret for the X-Coalmine-Signature HMAC; the receiver checks it with the same secret. */
  secret: string;
  /** Epoch ms; injected so tests can pin the timestamp header. */
  now?: () => number;
}

export const SIGNATURE_HEADER = 'x-coalmine-signature';
export const TIMESTAMP_HEADER = 'x-coalmine-timestamp';

/** "sha256=<hex>" of the exact body bytes: what the receiver recomputes to trust the message. */
export function signBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Generic webhook: the notification as JSON, signed with HMAC-SHA256. */
export class WebhookNotifier implements Notifier {
  readonly kind = 'webhook';
  readonly #opts: WebhookOptions;
  constructor(opts: WebhookOptions) {
    this.#opts = opts;
  }

  async send(n: AlertNotification, signal: AbortSignal): Promise<void> {
    const body = JSON.stringify(n);
    const now = this.#opts.now ?? Date.now;
    await postJson(
      this.#opts.url,
      body,
      {
        [SIGNATURE_HEADER]: signBody(body, this.#opts.secret),
        [TIMESTAMP_HEADER]: String(now()),
      },
      signal,
    );
  }
}
