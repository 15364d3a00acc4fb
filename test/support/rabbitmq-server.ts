import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, waitFor } from './net.js';
import { tcpAnswers } from './services.js';

/** Debian's start script without the wrapper that would switch to the rabbitmq user. */
export const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';

/** Whether the RabbitMQ start script is installed where Debian puts it. */
export function haveRabbitmqServer(): boolean {
  if (existsSync(RABBITMQ_SERVER)) return true;
  const line = `${RABBITMQ_SERVER} is missing: apt-get install rabbitmq-server`;
  if (process.env.CI) throw new Error(`CI: ${line}`);
  console.warn(`skipping: ${line}`);
  return false;
}

export interface PrivateRabbitmq {
  /** The AMQP port (plain), and the AMQPS port when a TLS listener was configured. */
  port: number;
  tlsPort: number;
  /** SIGKILL by PID and wait for the exit. */
  stop(): Promise<void>;
}

/**
 * A RabbitMQ node of the test's own: its own node name, ports (AMQP, AMQPS, distribution), mnesia, logs,
 * config (`rabbitmq.conf` syntax, after the two listeners) and no plugins, in `dir`; epmd stays shared.
 * The system's rabbitmq-env.conf is not read, so it cannot rename the node. Booting takes ~5 s.
 */
export async function startRabbitmq(dir: string, config: string): Promise<PrivateRabbitmq> {
  const [port, tlsPort, distPort] = [await freePort(), await freePort(), await freePort()];
  const conf = join(dir, 'rabbitmq.conf');
  await writeFile(
    conf,
    `listeners.tcp.default = 127.0.0.1:${port}\nlisteners.ssl.default = 127.0.0.1:${tlsPort}\n${config}\n`,
  );
  await writeFile(join(dir, 'enabled_plugins'), '[].\n');
  const child: ChildProcess = spawn(RABBITMQ_SERVER, [], {
    stdio: 'ignore',
    env: {
      ...process.env,
      // Makes the script exec the Erlang VM, so the PID we hold is the broker's.
      RUNNING_UNDER_SYSTEMD: '1',
      RABBITMQ_NODENAME: `coalmine-tls-${port}@localhost`,
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(dir, 'log'),
      RABBITMQ_CONFIG_FILE: conf,
      RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
      RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    },
  });
  child.on('error', () => undefined); // shows as the port never opening
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    process.kill(child.pid!, 'SIGKILL');
    await exited;
  };
  try {
    await waitFor(
      `private RabbitMQ on ports ${port}/${tlsPort}`,
      async () =>
        child.exitCode === null &&
        (await tcpAnswers('127.0.0.1', tlsPort)) &&
        (await tcpAnswers('127.0.0.1', port))
          ? true
          : undefined,
      40_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, tlsPort, stop };
}
