import { createHmac, timingSafeEqual } from 'node:crypto';
import { postJson } from './http.js';
import type { AlertNotification, Notifier } from './types.js';
import { z } from 'zod';
import { defineNotifier, envName, httpUrl } from './definition.js';

export interface WebhookOptions {
  url: string;
  /** Shared secret for the X-Coalmine-Signature HMAC; the receiver checks it with the same secret. */
  secret: string;
  /** Epoch ms; injected so tests can pin the timestamp header. */
  now?: () => number;
}

export const SIGNATURE_HEADER = 'x-coalmine-signature';
export const TIMESTAMP_HEADER = 'x-coalmine-timestamp';

/**
 * "sha256=<hex>" of `<timestamp>.<body>`: the receiver recomputes it over the exact bytes it got. The
 * timestamp (the X-Coalmine-Timestamp header, epoch ms) is signed too, so a captured request cannot be
 * replayed later with a fresh timestamp: the receiver rejects timestamps older than a few minutes.
 */
export function sign(timestamp: string, body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export type SignatureCheck = 'ok' | 'missing' | 'bad signature' | 'stale';

/**
 * What a receiver does with a webhook request: check the signature in constant time, then that the
 * timestamp is within `toleranceMs` (default 5 minutes) of its own clock.
 */
export function verifySignature(
  req: { body: string; timestamp: string | undefined; signature: string | undefined },
  secret: string,
  opts: { now?: number; toleranceMs?: number } = {},
): SignatureCheck {
  const { body, timestamp, signature } = req;
  if (!timestamp || !signature?.startsWith('sha256=')) return 'missing';
  const expected = Buffer.from(sign(timestamp, body, secret));
  const got = Buffer.from(signature);
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) return 'bad signature';
  const at = Number(timestamp);
  const now = opts.now ?? Date.now();
  if (!Number.isFinite(at) || Math.abs(now - at) > (opts.toleranceMs ?? 300_000)) return 'stale';
  return 'ok';
}

/** Generic webhook: the notification as JSON, signed with HMAC-SHA256 over its timestamp and body. */
export class WebhookNotifier implements Notifier {
  readonly kind = 'webhook';
  readonly #opts: WebhookOptions;
  constructor(opts: WebhookOptions) {
    this.#opts = opts;
  }

  async send(n: AlertNotification, signal: AbortSignal): Promise<void> {
    const body = JSON.stringify(n);
    // Taken per attempt: a retry is a new request with its own timestamp.
    const timestamp = String((this.#opts.now ?? Date.now)());
    await postJson(
      this.#opts.url,
      body,
      { [SIGNATURE_HEADER]: sign(timestamp, body, this.#opts.secret), [TIMESTAMP_HEADER]: timestamp },
      signal,
    );
  }
}

export const webhookNotifier = defineNotifier({
  kind: 'webhook',
  summary: 'Generic webhook: JSON body signed with HMAC-SHA256',
  options: z.strictObject({
    url: httpUrl('the receiver').optional(),
    urlEnv: envName.optional(),
    secret: z.string().min(16, 'use a secret of at least 16 characters').optional(),
    secretEnv: envName.optional().describe('Environment variable holding the HMAC secret'),
  }),
  secrets: [
    { key: 'url', required: true },
    { key: 'secret', required: true },
  ],
  create: (_o, secrets) => new WebhookNotifier({ url: secrets.url('url'), secret: secrets.text('secret')! }),
});
