import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryError } from './errors.js';
import {
  sampleAlert,
  startHttpReceiver,
  type HttpReceiver,
  type ReceivedRequest,
} from './receivers.testkit.js';
import { sign, verifySignature, WebhookNotifier } from './webhook.js';

const SECRET = 'shared-secret-for-tests';

const header = (r: ReceivedRequest, name: string) => {
  const v = r.headers[name];
  return typeof v === 'string' ? v : undefined;
};
const check = (r: ReceivedRequest, now?: number) =>
  verifySignature(
    {
      body: r.body,
      timestamp: header(r, 'x-coalmine-timestamp'),
      signature: header(r, 'x-coalmine-signature'),
    },
    SECRET,
    now === undefined ? {} : { now },
  );

describe('WebhookNotifier', () => {
  let receiver: HttpReceiver | undefined;
  afterEach(() => receiver?.close());

  it('posts the notification as JSON with a signature the receiver verifies', async () => {
    receiver = await startHttpReceiver((r) => (check(r) === 'ok' ? 204 : 401));
    const n = sampleAlert();
    const notifier = new WebhookNotifier({ url: `${receiver.url}/hook`, secret: SECRET });
    await notifier.send(n, new AbortController().signal);

    const [req] = receiver.requests;
    expect(req?.method).toBe('POST');
    expect(req?.path).toBe('/hook');
    expect(req?.headers['content-type']).toBe('application/json');
    expect(Math.abs(Number(req?.headers['x-coalmine-timestamp']) - Date.now())).toBeLessThan(5000);
    expect(JSON.parse(req?.body ?? '')).toEqual(n);
  });

  it('fails with the status when the receiver rejects a signature made with another secret', async () => {
    receiver = await startHttpReceiver((r) => (check(r) === 'ok' ? 204 : 401));
    const notifier = new WebhookNotifier({ url: receiver.url, secret: 'wrong' });
    const err = await notifier.send(sampleAlert(), new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeliveryError);
    expect((err as DeliveryError).status).toBe(401);
    expect(check(receiver.requests[0]!)).toBe('bad signature');
  });

  it('signs the timestamp with the body, so a replayed request is caught', async () => {
    receiver = await startHttpReceiver(() => 204);
    const notifier = new WebhookNotifier({ url: receiver.url, secret: SECRET, now: () => 1_000_000 });
    await notifier.send(sampleAlert(), new AbortController().signal);
    const req = receiver.requests[0]!;
    expect(header(req, 'x-coalmine-timestamp')).toBe('1000000');
    expect(header(req, 'x-coalmine-signature')).toBe(sign('1000000', req.body, SECRET));
    // Within five minutes of the timestamp it is good; later the same bytes are a replay.
    expect(check(req, 1_000_000 + 299_000)).toBe('ok');
    expect(check(req, 1_000_000 + 301_000)).toBe('stale');
    // A fresh timestamp on the old signature does not verify, nor does a changed body.
    const signature = header(req, 'x-coalmine-signature');
    expect(
      verifySignature({ body: req.body, timestamp: '1300000', signature }, SECRET, { now: 1_300_000 }),
    ).toBe('bad signature');
    expect(
      verifySignature({ body: `${req.body} `, timestamp: '1000000', signature }, SECRET, { now: 1_000_000 }),
    ).toBe('bad signature');
    expect(verifySignature({ body: req.body, timestamp: undefined, signature }, SECRET)).toBe('missing');
  });
});
