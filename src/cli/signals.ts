import type { Logger } from '../core/log.js';

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

/** The part of `process` the guard needs; tests pass an EventEmitter. */
export interface GuardedProcess {
  on(event: 'unhandledRejection' | 'uncaughtException', listener: (reason: unknown) => void): unknown;
  exit(code: number): void;
}

/** Installed handlers per process, logging to the latest command's logger. */
const guards = new WeakMap<GuardedProcess, { log: Logger }>();

/**
 * A long-running command must never be taken down by a stray rejection from a library: it is logged at
 * error level (a bug to report) and the agent keeps going. An uncaught exception is logged too, then the
 * process exits 1: the code that threw was interrupted half way, so the agent's state may be corrupt and a
 * supervisor's restart is safer than running on. Calling it again only moves the logging to `log`.
 */
export function guardProcess(log: Logger, proc: GuardedProcess = process): void {
  const existing = guards.get(proc);
  if (existing) {
    existing.log = log;
    return;
  }
  const guard = { log };
  guards.set(proc, guard);
  const fields = (err: unknown) => ({
    component: 'process',
    err,
    ...(err instanceof Error && err.stack ? { stack: err.stack } : {}),
  });
  proc.on('unhandledRejection', (reason) => {
    guard.log.error('unhandled promise rejection (a bug: please report it); still running', fields(reason));
  });
  proc.on('uncaughtException', (err) => {
    guard.log.error('uncaught exception (a bug: please report it); exiting', fields(err));
    proc.exit(1);
  });
}
