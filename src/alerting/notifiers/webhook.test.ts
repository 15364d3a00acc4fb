import { createHmac, timingSafeEqual } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryError } from './errors.js';
import { sampleAlert, startHttpReceiver, type HttpReceiver } from './receivers.testkit.js';
import { WebhookNotifier } from './webhook.js';

const SECRET = 'shared-secret-for-tests';

/** What a receiver does: recompute the HMAC over the raw body and compare in constant time. */
function validSignature(body: string, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const expected = createHmac('sha256', SECRET).update(body).digest();
  const got = Buffer.from(header.slice('sha256='.length), 'hex');
  return got.length === expected.length && timingSafeEqual(got, expected);
}

describe('WebhookNotifier', () => {
  let receiver: HttpReceiver | undefined;
  afterEach(() => receiver?.close());

  it('posts the notification as JSON with a signature the receiver verifies', async () => {
    receiver = await startHttpReceiver((r) =>
      validSignature(r.body, r.headers['x-coalmine-signature']) ? 204 : 401,
    );
    const n = sampleAlert();
    const notifier = new WebhookNotifier({ url: `${receiver.url}/hook`, secret: SECRET, now: () => 1234 });
    await notifier.send(n, new AbortController().signal);

    const [req] = receiver.requests;
    expect(req?.method).toBe('POST');
    expect(req?.path).toBe('/hook');
    expect(req?.headers['content-type']).toBe('application/json');
    expect(req?.headers['x-coalmine-timestamp']).toBe('1234');
    expect(JSON.parse(req?.body ?? '')).toEqual(n);
  });

  it('fails with the status when the receiver rejects a signature made with another secret', async () => {
    receiver = await startHttpReceiver((r) =>
      validSignature(r.body, r.headers['x-coalmine-signature']) ? 204 : 401,
    );
    const notifier = new WebhookNotifier({ url: receiver.url, secret: 'wrong' });
    const err = await notifier.send(sampleAlert(), new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeliveryError);
    expect((err as DeliveryError).status).toBe(401);
  });
});
