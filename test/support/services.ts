import { connect } from 'node:net';

/** Whether something accepts a TCP connection on host:port now; says nothing either way. */
export function tcpAnswers(host: string, port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Whether a service a test needs answers on host:port. In CI an unreachable one fails the test run
 * (so CI can never go green by skipping); for a developer it skips with a line saying how to start it.
 */
export async function serviceReachable(host: string, port: number, howToStart: string): Promise<boolean> {
  const reachable = await tcpAnswers(host, port);
  if (!reachable) {
    const line = `nothing answers on ${host}:${port}: ${howToStart}`;
    if (process.env.CI) throw new Error(`CI: ${line}`);
    console.warn(`skipping: ${line}`);
  }
  return reachable;
}

/** The local Redis the tests use. */
export const REDIS = { host: '127.0.0.1', port: 6379 };

/** serviceReachable for the local Redis, with how to start it. */
export const redisReachable = (): Promise<boolean> =>
  serviceReachable(REDIS.host, REDIS.port, 'start Redis: redis-server --daemonize yes --port 6379');
