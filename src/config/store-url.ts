import { resolve, sep } from 'node:path';
import { redactText } from '../core/log.js';

/** Kernel and device file systems: SQLite cannot keep a database there, and opening one can hang. */
const PSEUDO_FILE_SYSTEMS = ['/proc', '/sys', '/dev'];

const FORMS = 'sqlite:PATH, a directory, or postgres://user@host:5432/database';

/**
 * What is wrong with a `store.url` that can be told without touching the file system or the network:
 * an engine we do not have, a URL that does not parse, a path under /proc, /sys or /dev. The forms
 * are those of parseStoreSpec (src/store/open.ts), which opens them.
 */
export function storeUrlProblem(url: string): string | undefined {
  const s = url.trim();
  if (s === '') return `empty: use ${FORMS}`;
  if (/^postgres(ql)?:\/\//i.test(s)) {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      return `${shown(s)} is not a valid URL (expected postgres://user@host:5432/database)`;
    }
    return u.hostname ? undefined : `${shown(s)} has no host (expected postgres://user@host:5432/database)`;
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(s);
  if (scheme && !/^sqlite:/i.test(s))
    return `unknown engine "${redactText(scheme[1]!, 40)}" in ${shown(s)} (supported: ${FORMS})`;
  const path = /^sqlite:/i.test(s) ? s.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '') : s;
  if (path === '') return 'sqlite: needs a path, e.g. sqlite:./data/coalmine.db';
  return storePathProblem(resolve(path));
}

/** A store path under a kernel or device file system, or undefined. */
export function storePathProblem(path: string): string | undefined {
  const fs = PSEUDO_FILE_SYSTEMS.find((p) => path === p || path.startsWith(`${p}${sep}`));
  return fs
    ? `${shown(path)} is under ${fs}, a kernel file system: put the store on a disk, e.g. sqlite:./data/coalmine.db`
    : undefined;
}

function shown(s: string): string {
  return JSON.stringify(redactText(s, 200));
}
