/**
 * The last word of a process killed by a signal JavaScript cannot handle. SIGBUS (SQLite touching its
 * memory-mapped -shm file after another program truncated it), SIGSEGV, SIGILL and SIGFPE come from
 * the CPU in the middle of native code: a `process.on` listener would only make the thread retry the
 * faulting instruction forever. The native module's handler (native/fatalsignal/fatalsignal.c) writes
 * one JSON log line to stderr and lets the signal kill the process, which still dies of it (exit
 * status 128 + the signal's number).
 *
 * The line is JSON whatever --log-format says: the handler cannot format, so it is built here once.
 */
import { constants } from 'node:os';
import { loadIcmpAddon } from '../probes/icmp/native.js';

/** What each signal most likely means for the agent, and what to check. */
export const FATAL_SIGNAL_HINTS = {
  SIGBUS:
    "a memory-mapped file changed under the process, e.g. the SQLite -shm of the store truncated by another program; check nothing else writes the store's files",
  SIGSEGV: 'an invalid memory access in native code (a bug in Node.js or a native module: please report it)',
  SIGILL:
    'an illegal instruction in native code, e.g. a native module built for another CPU: rebuild it (npm rebuild, npm run build:native)',
  SIGFPE: 'an arithmetic fault in native code (a bug in Node.js or a native module: please report it)',
} as const satisfies Partial<Record<NodeJS.Signals, string>>;

export type FatalSignal = keyof typeof FATAL_SIGNAL_HINTS;

export const FATAL_SIGNAL_MSG = 'killed by a fatal signal';

const TIME_HEAD = '{"time":"';

/**
 * The line of `signal` after `{"time":"` (where the handler writes the time): the fields of
 * src/core/log.ts in its order, and a newline.
 */
export function fatalSignalLineTail(signal: FatalSignal): string {
  const line = JSON.stringify({
    time: '',
    level: 'error',
    msg: FATAL_SIGNAL_MSG,
    component: 'process',
    signal,
    hint: FATAL_SIGNAL_HINTS[signal],
  });
  return `${line.slice(TIME_HEAD.length)}\n`;
}

export interface FatalSignalLogOptions {
  /** The native module; default the project's build (tests point it elsewhere). */
  addonPath?: string;
}

/**
 * Installs the log line for the fatal signals, once per process (again is a no-op). Returns false,
 * logging nothing, when the native module is not built or is too old to have the handler: the agent
 * then runs as before and dies of such a signal silently. Never throws.
 */
export function installFatalSignalLog(options: FatalSignalLogOptions = {}): boolean {
  const load = loadIcmpAddon(options.addonPath);
  if (!load.ok || typeof load.addon.fatalSignalLog !== 'function') return false;
  const install = load.addon.fatalSignalLog;
  try {
    for (const signal of Object.keys(FATAL_SIGNAL_HINTS) as FatalSignal[])
      install(constants.signals[signal], fatalSignalLineTail(signal));
    return true;
  } catch {
    return false; // a sigaction that failed: without the line, as when the module is missing
  }
}
