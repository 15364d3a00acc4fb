import type { Logger } from '../core/log.js';
import type { Transport } from './transport.js';

/**
 * Logs a transport's connection changes until it closes: the first connection (info), a lost connection
 * and the reconnect that ends the outage (warn, with how long it was down), and retries. Retries are warn
 * at attempts 1, 2, 4, 8... and debug in between, so a long outage stays visible without flooding the log.
 * Failures of the first connection are the caller's to report: it decides whether to retry.
 */
export function logTransportStatus(
  t: Pick<Transport, 'status'>,
  log: Logger,
  now: () => number = Date.now,
): Promise<void> {
  return (async () => {
    let everConnected = false;
    let downSince: number | undefined;
    for await (const s of t.status()) {
      switch (s.type) {
        case 'connected':
          if (!everConnected) log.info('transport connected');
          else if (downSince !== undefined) log.warn('transport reconnected', { downMs: now() - downSince });
          everConnected = true;
          downSince = undefined;
          break;
        case 'disconnected':
        case 'reconnecting':
          if (!everConnected) break;
          if (downSince === undefined) {
            downSince = now();
            log.warn('transport disconnected', {
              err: s.error === undefined ? undefined : { message: s.error },
            });
          }
          if (s.type === 'reconnecting') {
            const fields = {
              attempt: s.attempt,
              retryInMs: s.delayMs,
              err: s.error === undefined ? undefined : { message: s.error },
            };
            if ((s.attempt & (s.attempt - 1)) === 0) log.warn('transport reconnecting', fields);
            else log.debug('transport reconnecting', fields);
          }
          break;
        case 'closed':
          log.debug('transport closed');
          break;
        case 'connecting':
          break;
      }
    }
  })().catch((err: unknown) => log.error('transport status stream failed', { err }));
}
