import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { nowMs, startTcpProxy, type TcpProxy } from './tcp-proxy-core.mjs';

export { nowMs, startTcpProxy, type TcpProxy };

type Held = TcpProxy['held'];

/** The same proxy in a process of its own, driven over IPC (see tcp-proxy-core.mjs for why). */
export interface TcpProxyProcess {
  port: number;
  setDelay(which: 'toServer' | 'toClient', ms: number): Promise<void>;
  /** Every delayed chunk so far: when it left (nowMs()) and how long the proxy held it. */
  held(): Promise<Held>;
  close(): Promise<void>;
}

export async function startTcpProxyProcess(target: { host: string; port: number }): Promise<TcpProxyProcess> {
  const child: ChildProcess = fork(
    join(import.meta.dirname, 'tcp-proxy-core.mjs'),
    [target.host, String(target.port)],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let nextId = 1;
  const waiting = new Map<number, (m: { held?: Held }) => void>();
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the proxy process exited (${code}) before listening`)));
    child.on('message', (m: { id?: number; port?: number; held?: Held }) => {
      if (m.port !== undefined) resolve(m.port);
      else if (m.id !== undefined) {
        waiting.get(m.id)?.(m);
        waiting.delete(m.id);
      }
    });
  });
  const ask = (msg: object) =>
    new Promise<{ held?: Held }>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, resolve);
      child.send({ id, ...msg }, (err) => err && reject(err));
    });
  return {
    port,
    async setDelay(which, ms) {
      await ask({ op: 'delay', which, ms });
    },
    async held() {
      return (await ask({ op: 'held' })).held!;
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.disconnect();
        const killer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(killer);
      }
    },
  };
}
