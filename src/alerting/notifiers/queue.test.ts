import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryError } from './errors.js';
import { NotifierQueue } from './queue.js';
import { sampleAlert, startHttpReceiver, type HttpReceiver } from './receivers.testkit.js';
import type { AlertNotification, Notifier } from './types.js';
import { WebhookNotifier } from './webhook.js';

describe('NotifierQueue', () => {
  let receiver: HttpReceiver | undefined;
  let queue: NotifierQueue | undefined;
  afterEach(async () => {
    await queue?.close();
    await receiver?.close();
  });

  it('retries a receiver that answers 500 with backoff and jitter until it takes the message', async () => {
    receiver = await startHttpReceiver((_r, i) => (i < 3 ? 500 : 200));
    const slept: number[] = [];
    const errors: unknown[] = [];
    queue = new NotifierQueue(new WebhookNotifier({ url: receiver.url, secret: 's' }), {
      baseDelayMs: 100,
      maxDelayMs: 300,
      random: () => 0.5,
      sleep: async (ms) => void slept.push(ms),
      onError: (err) => errors.push(err),
    });
    expect(queue.enqueue(sampleAlert())).toBe(true);
    await queue.idle();

    expect(receiver.requests).toHaveLength(4);
    expect(slept).toEqual([50, 100, 150]); // 0.5 × min(300, 100·2^k)
    expect(queue.stats()).toEqual({ delivered: 1, failedAttempts: 3, gaveUp: 0, dropped: 0, queued: 0 });
    expect(errors[0]).toBeInstanceOf(DeliveryError);
    expect((errors[0] as DeliveryError).status).toBe(500);
  });

  it('times out a hanging receiver without ever blocking enqueue(), and counts the failures', async () => {
    receiver = await startHttpReceiver(() => 'hang');
    queue = new NotifierQueue(new WebhookNotifier({ url: receiver.url, secret: 's' }), {
      maxAttempts: 2,
      attemptTimeoutMs: 50,
      sleep: async () => undefined,
    });
    const start = performance.now();
    for (let i = 0; i < 5; i++) queue.enqueue(sampleAlert({ rule: `r${i}` }));
    expect(performance.now() - start).toBeLessThan(5);

    // While an attempt hangs at the receiver, enqueue still returns at once.
    while (receiver.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    const again = performance.now();
    queue.enqueue(sampleAlert({ rule: 'r5' }));
    expect(performance.now() - again).toBeLessThan(5);

    await queue.idle();
    expect(receiver.requests).toHaveLength(12);
    expect(queue.stats()).toEqual({ delivered: 0, failedAttempts: 12, gaveUp: 6, dropped: 0, queued: 0 });
  });

  it('gives up after maxAttempts timeouts and moves on to the next notification', async () => {
    receiver = await startHttpReceiver((r) => (r.body.includes('"hangs"') ? 'hang' : 200));
    queue = new NotifierQueue(new WebhookNotifier({ url: receiver.url, secret: 's' }), {
      maxAttempts: 2,
      attemptTimeoutMs: 500, // generous: only the hanging request may time out, even on a loaded machine
      sleep: async () => undefined,
    });
    queue.enqueue(sampleAlert({ rule: 'hangs' }));
    queue.enqueue(sampleAlert({ rule: 'fine' }));
    await queue.idle();
    expect(queue.stats()).toEqual({ delivered: 1, failedAttempts: 2, gaveUp: 1, dropped: 0, queued: 0 });
  });

  it('times out a notifier that ignores its abort signal', async () => {
    const stuck: Notifier = { kind: 'stuck', send: () => new Promise<void>(() => undefined) };
    queue = new NotifierQueue(stuck, { maxAttempts: 1, attemptTimeoutMs: 20 });
    queue.enqueue(sampleAlert());
    await queue.idle();
    expect(queue.stats()).toMatchObject({ failedAttempts: 1, gaveUp: 1 });
  });

  it('is bounded: past capacity notifications are dropped and counted', async () => {
    const seen: AlertNotification[] = [];
    const notifier: Notifier = { kind: 'mem', send: async (n) => void seen.push(n) };
    queue = new NotifierQueue(notifier, { capacity: 3 });
    const accepted = [1, 2, 3, 4, 5].map((i) => queue!.enqueue(sampleAlert({ rule: `r${i}` })));
    expect(accepted).toEqual([true, true, true, false, false]);
    await queue.idle();
    expect(seen.map((n) => n.rule)).toEqual(['r1', 'r2', 'r3']);
    expect(queue.stats()).toMatchObject({ delivered: 3, dropped: 2 });
  });

  it('closes at once while an attempt hangs, without sleeping out the backoff before the next one', async () => {
    // Real backoff (1 s base, full jitter pinned to its top) and a receiver that never answers.
    queue = new NotifierQueue({ kind: 'stuck', send: () => new Promise(() => {}) }, { random: () => 1 });
    queue.enqueue(sampleAlert());
    await new Promise((r) => setTimeout(r, 20));
    const t0 = performance.now();
    await queue.close();
    expect(performance.now() - t0).toBeLessThan(100);
    expect(queue.stats()).toMatchObject({ delivered: 0, failedAttempts: 1, queued: 0 });
  });

  it('does not run the notifier on the caller’s stack, and close() is idempotent', async () => {
    let calls = 0;
    queue = new NotifierQueue({ kind: 'mem', send: async () => void calls++ });
    queue.enqueue(sampleAlert());
    expect(calls).toBe(0);
    await queue.idle();
    expect(calls).toBe(1);
    await Promise.all([queue.close(), queue.close()]);
    expect(queue.enqueue(sampleAlert())).toBe(false);
    expect(queue.stats().dropped).toBe(1);
  });
});
