/** Resolves on SIGINT or SIGTERM (or when `signal` aborts), so long-running commands can clean up. */
export function untilSignal(signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    signal?.addEventListener('abort', done, { once: true });
  });
}

let guarded = false;

/**
 * A long-running agent must never be taken down by a stray rejection from a library: log it loudly
 * and keep going. (Bugs still get reported; they just do not stop the monitoring.)
 */
export function guardProcess(log: (line: string) => void): void {
  if (guarded) return;
  guarded = true;
  process.on('unhandledRejection', (reason) => {
    log(
      `coalmine: unhandled rejection (please report this bug): ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`,
    );
  });
}
