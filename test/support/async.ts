import type { Delivery } from '../../src/transports/transport.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** setTimeout may fire up to a millisecond early by the hrtime clock; this never does. */
export async function sleepAtLeast(ms: number): Promise<void> {
  const start = process.hrtime.bigint();
  for (;;) {
    const left = ms - Number(process.hrtime.bigint() - start) / 1e6;
    if (left <= 0) return;
    await sleep(Math.ceil(left));
  }
}

/** Up to `n` deliveries from a subscription, or fewer if `timeoutMs` passes or the subscription ends first. */
export async function take(iter: AsyncIterator<Delivery>, n: number, timeoutMs: number): Promise<Delivery[]> {
  const out: Delivery[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    let timer: NodeJS.Timeout | undefined;
    const next = await Promise.race([
      iter.next(),
      new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), left))),
    ]);
    clearTimeout(timer);
    if (next === 'timeout' || next.done) break;
    out.push(next.value);
  }
  return out;
}

/** The next delivery, or undefined if none comes within `ms` or the subscription ends. */
export async function nextWithin(iter: AsyncIterator<Delivery>, ms: number): Promise<Delivery | undefined> {
  return (await take(iter, 1, ms))[0];
}

/**
 * Waits for a synchronous condition, polling every `pollMs`; throws naming `what` after `timeoutMs`.
 * Resolves with how long it took.
 */
export async function until(
  cond: () => boolean,
  what: string,
  timeoutMs = 5000,
  pollMs = 10,
): Promise<number> {
  const start = Date.now();
  const deadline = start + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
  return Date.now() - start;
}
