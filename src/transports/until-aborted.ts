/**
 * `pending`, or a rejection with the signal's reason once it aborts first; the abort listener never
 * outlives the wait. The caller still owns what `pending` makes: if it settles later, closing that is on
 * the caller (a Promise.race alone leaves both the listener and the late result behind).
 */
export function untilAborted<T>(pending: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return pending;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
