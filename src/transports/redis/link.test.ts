// Against the real Redis on 127.0.0.1:6379, through a proxy of the test's own to cut the connection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisReachable } from '../../../test/support/services.js';
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js';
import { RedisLink } from './link.js';

const redisUp = await redisReachable();

describe.skipIf(!redisUp)('RedisLink with auto-pipelining', () => {
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await startTcpProxy({ host: '127.0.0.1', port: 6379 });
  });
  afterAll(async () => {
    await proxy.close();
  });

  it('sends again after a reconnect even when a pipeline of the old connection never finished', async () => {
    const ups: number[] = [];
    const link = new RedisLink(
      { host: '127.0.0.1', port: proxy.port, enableAutoPipelining: true },
      { initialMs: 20, maxMs: 100 },
      { up: () => ups.push(Date.now()), down: () => {}, reconnecting: () => {} },
    );
    try {
      await link.open();
      expect(await link.run((c) => c.ping())).toBe('PONG');
      // The state a pipeline lost with its connection leaves behind: marked running, never finished.
      // Every later auto-pipelined command queues behind it.
      const internals = link.client as unknown as { _runningAutoPipelines: Set<string> };
      internals._runningAutoPipelines.add('main');
      const stuck = link.run((c) => c.ping());
      const outcome = await Promise.race([
        stuck.then(
          () => 'answered',
          () => 'failed',
        ),
        new Promise((r) => setTimeout(() => r('waiting'), 300)),
      ]);
      expect(outcome).toBe('waiting');
      // The connection drops and comes back: the command of the old connection fails, a new one works.
      proxy.down();
      await expect(stuck).rejects.toThrow(/connection lost/);
      proxy.up();
      await expect.poll(() => ups.length, { timeout: 5000 }).toBe(2);
      const answered = await Promise.race([
        link.run((c) => c.ping()),
        new Promise((r) => setTimeout(() => r('still stuck'), 2000)),
      ]);
      expect(answered).toBe('PONG');
    } finally {
      link.close();
    }
  });
});
