import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { BrokerProcess } from './brokers.js';
import { freePort } from './net.js';

export const NATS_SERVER = '/usr/sbin/nats-server';

export interface PrivateNatsServer {
  port: number;
  /** Kills the server by its PID. */
  stop(): Promise<void>;
}

/** Whether something sends a NATS INFO line on the port yet. */
function sendsInfo(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('data', (d: Buffer) => done(d.toString('latin1').startsWith('INFO ')));
    s.once('error', () => done(false));
  });
}

/**
 * A nats-server of the test's own on a free loopback port, with `config` (nats-server's config syntax)
 * written to `dir/name.conf` after `host` and `port`.
 */
export async function startNatsServer(dir: string, name: string, config: string): Promise<PrivateNatsServer> {
  const port = await freePort();
  const file = join(dir, `${name}.conf`);
  await writeFile(file, `host: 127.0.0.1\nport: ${port}\n${config}\n`);
  const server = new BrokerProcess({
    name: `nats-server (${name}) on port ${port}`,
    command: NATS_SERVER,
    args: ['-c', file],
    ready: () => sendsInfo(port),
  });
  await server.start();
  return { port, stop: () => server.kill() };
}
