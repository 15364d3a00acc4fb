import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './net.js';
import { haveCommand } from './require.js';

export const ALERTMANAGER = 'prometheus-alertmanager';

/** Whether Debian's Alertmanager is installed (a skip with the reason, or a failure under CI=true). */
export const haveAlertmanager = (): boolean =>
  haveCommand(ALERTMANAGER, 'apt-get install -y prometheus-alertmanager');

/** What Alertmanager's GET /api/v2/alerts returns for each alert (the fields tests read). */
export interface GettableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  status: { state: string };
}

export interface RunningAlertmanager {
  url: string;
  alerts(): Promise<GettableAlert[]>;
  stop(): Promise<void>;
}

/**
 * A real Alertmanager on a free loopback port, with a receiver that has no integrations: it keeps the
 * alerts and serves them, and sends nothing anywhere.
 */
export async function startAlertmanager(): Promise<RunningAlertmanager> {
  const dir = await mkdtemp(join(tmpdir(), 'coalmine-am-'));
  await writeFile(join(dir, 'alertmanager.yml'), 'route:\n  receiver: keep\nreceivers:\n  - name: keep\n');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    ALERTMANAGER,
    [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
  const stop = async () => {
    if (child.pid !== undefined && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      `Alertmanager ready on ${url}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`Alertmanager exited: ${log}`);
        return (await fetch(`${url}/-/ready`)).ok ? true : undefined;
      },
      15_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    alerts: async () => (await (await fetch(`${url}/api/v2/alerts`)).json()) as GettableAlert[],
    stop,
  };
}
