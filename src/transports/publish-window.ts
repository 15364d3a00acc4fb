import { withTimeout } from './timeouts.js';
import { TransportError } from './transport.js';

/**
 * Publishes waiting for the server's reply, bounded: past `max` at once the server is not keeping up,
 * and a publish fails with `timeout` at once rather than queueing behind the others. Each waits at most
 * its own timeout; one given up on still counts until the server answers it, since the server has it.
 */
export class PublishWindow {
  private inFlight = 0;

  constructor(
    private readonly displayUrl: string,
    private readonly max = 10_000,
  ) {}

  /** Runs `send`, rejecting with TransportError('timeout') when the window is full or after `timeoutMs`. */
  send<T>(send: () => Promise<T>, timeoutMs: number): Promise<T> {
    if (this.inFlight >= this.max) {
      return Promise.reject(
        new TransportError(
          'timeout',
          `${this.displayUrl}: ${this.inFlight} publishes still wait for the server`,
        ),
      );
    }
    this.inFlight++;
    const sent = send();
    const done = () => void this.inFlight--;
    sent.then(done, done);
    return withTimeout(
      sent,
      timeoutMs,
      () => new TransportError('timeout', `no reply from ${this.displayUrl} within ${timeoutMs} ms`),
    );
  }
}
