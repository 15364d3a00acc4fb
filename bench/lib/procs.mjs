// @ts-check
/**
 * Child processes of the bench: spawned pinned to a core when taskset exists, tracked by PID, and all
 * killed by PID at the end, on error and on SIGINT.
 */
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { setTimeout, clearTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';

export const CHILD_SCRIPT = fileURLToPath(new URL('./child.mjs', import.meta.url));

/** @param {string} cmd */
function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(':'))
    if (dir && existsSync(`${dir}/${cmd}`)) return `${dir}/${cmd}`;
  return undefined;
}

export const TASKSET = which('taskset');
export const CPUS = Number(execFileSync('getconf', ['_NPROCESSORS_ONLN']).toString().trim()) || 1;
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** @type {Map<number, { name: string, proc: import('node:child_process').ChildProcess }>} */
const live = new Map();

/** @param {string} msg */
export const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);

/**
 * Spawns a command, pinned to `cpu` when given and taskset exists (taskset execs it, so the PID is the
 * command's own).
 * @param {string} name for logs
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ cpu?: number, env?: NodeJS.ProcessEnv, stdio?: import('node:child_process').StdioOptions }} [opts]
 */
export function spawnTracked(name, cmd, args, opts = {}) {
  const pinned = opts.cpu !== undefined && TASKSET && opts.cpu < CPUS;
  const proc = spawn(
    pinned ? /** @type {string} */ (TASKSET) : cmd,
    pinned ? ['-c', String(opts.cpu), cmd, ...args] : args,
    {
      env: opts.env ?? process.env,
      stdio: opts.stdio ?? ['ignore', 2, 2],
    },
  );
  if (proc.pid === undefined) throw new Error(`could not start ${name} (${cmd})`);
  const pid = proc.pid;
  live.set(pid, { name, proc });
  proc.once('exit', () => live.delete(pid));
  return proc;
}

/**
 * Starts bench/lib/child.mjs in one mode with an IPC channel; its stdout goes to our stderr so the
 * table on stdout stays clean.
 * @param {string} mode
 * @param {unknown} args
 * @param {{ cpu?: number, script?: string }} [opts] `script` runs another child script (default child.mjs)
 */
export function spawnChild(mode, args, opts = {}) {
  // BENCH_NODE_FLAGS (e.g. --trace-gc) reaches the children only, for looking into a figure.
  const flags = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const { script = CHILD_SCRIPT, ...rest } = opts;
  return spawnTracked(mode, process.execPath, [...flags, script, mode, JSON.stringify(args)], {
    ...rest,
    stdio: ['ignore', 2, 2, 'ipc'],
  });
}

/**
 * Resolves with the child's first message of `type`; rejects on an `error` message, on exit, or after
 * `timeoutMs`.
 * @param {import('node:child_process').ChildProcess} child
 * @param {string} type
 * @param {number} timeoutMs
 * @returns {Promise<any>}
 */
export function nextMessage(child, type, timeoutMs) {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    /** @param {any} m */
    const onMessage = (m) => {
      if (m?.type === type) {
        done();
        resolve(m);
      } else if (m?.type === 'error') {
        done();
        reject(new Error(m.message));
      }
    };
    /** @param {number | null} code @param {string | null} signal */
    const onExit = (code, signal) => {
      done();
      reject(new Error(`child ${child.pid} exited (${signal ?? code}) before sending ${type}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`child ${child.pid}: no ${type} within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/**
 * Runs a one-shot child mode to completion and returns its `result` message.
 * @param {string} mode
 * @param {unknown} args
 * @param {{ cpu?: number, script?: string, timeoutMs: number }} opts
 */
export async function runChild(mode, args, opts) {
  const child = spawnChild(mode, args, opts);
  try {
    return await nextMessage(child, 'result', opts.timeoutMs);
  } finally {
    await killPid(child);
  }
}

/**
 * Stops one child: SIGTERM, then SIGKILL if it is still there after a second.
 * @param {import('node:child_process').ChildProcess} proc
 */
export async function killPid(proc) {
  if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  try {
    process.kill(proc.pid, 'SIGTERM');
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      if (proc.pid !== undefined) process.kill(proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, 1000);
  await exited;
  clearTimeout(t);
}

/** Kills every child still alive, each by its own PID. */
export async function killAll() {
  await Promise.all([...live.values()].map(({ proc }) => killPid(proc)));
}

/** Last resort on exit: synchronous SIGKILL by PID for anything left. */
export function killAllSync() {
  for (const pid of live.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/**
 * Runs a bench's main and exits: on success 0, on an error 1 (its stack logged), on Ctrl-C 130 and on
 * SIGTERM 143; every child is killed by its PID first, and `tmp` (the bench's temp dir) removed.
 * @param {() => Promise<void>} main @param {string} [tmp]
 */
export async function runBench(main, tmp) {
  let cleaning = false;
  /** @param {number} code */
  const cleanupAndExit = async (code) => {
    if (cleaning) return;
    cleaning = true;
    await killAll().catch(() => {});
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    process.exit(code);
  };
  process.on('exit', killAllSync);
  process.once('SIGINT', () => {
    log('interrupted: stopping child processes');
    void cleanupAndExit(130);
  });
  process.once('SIGTERM', () => void cleanupAndExit(143));
  try {
    await main();
    await cleanupAndExit(0);
  } catch (err) {
    log(`bench failed: ${/** @type {Error} */ (err)?.stack ?? err}`);
    await cleanupAndExit(1);
  }
}

/** A currently free TCP port on 127.0.0.1 (for programs that need a port number up front). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * user+system CPU seconds a process has used so far, from /proc/<pid>/stat (utime, stime in clock ticks).
 * @param {number} pid
 */
export function procCpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may itself contain spaces.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

export { sleep };
