/**
 * Callers waiting for the transport to be connected or closed. They never reject: an aborted
 * wait just ends, and the caller looks at the state itself.
 */
export class StateWaiters {
  private readonly waiters = new Set<() => void>();

  /** Resolves at the next wake(), or when `signal` aborts. */
  wait(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  wake(): void {
    for (const w of this.waiters) w();
    this.waiters.clear();
  }
}
