import { constants, existsSync, statSync } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { redactText } from '../../core/log.js';
import { defineStoreEngine } from '../engine.js';
import { StoreError } from '../errors.js';

export interface SqliteSpec {
  engine: 'sqlite';
  file: string;
}

const SQLITE_FILE = /\.(db|sqlite3?)$/i;

/** Kernel and device file systems: SQLite cannot keep a database there, and opening one can hang. */
const PSEUDO_FILE_SYSTEMS = ['/proc', '/sys', '/dev'];

/**
 * `sqlite:PATH` (a file), or a plain path: a directory (created if missing) gets `coalmine.db` inside
 * it; a path ending .db/.sqlite is the file. A URL with another scheme is not ours.
 */
function parse(url: string): SqliteSpec | string | undefined {
  if (/^sqlite:/i.test(url)) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === '') return 'has no path (expected sqlite:./data/coalmine.db)';
    return { engine: 'sqlite', file: resolve(path) };
  }
  if (/^([a-z][a-z0-9+.-]*):\/\//i.test(url)) return undefined;
  const path = resolve(url);
  if (existsSync(path) && statSync(path).isDirectory())
    return { engine: 'sqlite', file: join(path, 'coalmine.db') };
  if (SQLITE_FILE.test(path)) return { engine: 'sqlite', file: path };
  return { engine: 'sqlite', file: join(path, 'coalmine.db') };
}

/** A store path under a kernel or device file system, or undefined. */
export function storePathProblem(path: string): string | undefined {
  const fs = PSEUDO_FILE_SYSTEMS.find((p) => path === p || path.startsWith(`${p}${sep}`));
  return fs
    ? `${JSON.stringify(redactText(path, 200))} is under ${fs}, a kernel file system: put the store on a disk, e.g. sqlite:./data/coalmine.db`
    : undefined;
}

export const sqliteEngine = defineStoreEngine<SqliteSpec>({
  engine: 'sqlite',
  label: 'SQLite',
  forms: 'sqlite:PATH, a directory',
  parse,
  staticProblem: (spec) => storePathProblem(spec.file),
  preflight: (spec, timeoutMs) => checkSqlitePath(spec.file, timeoutMs),
  shown: (spec) => `sqlite:${spec.file}`,
  async open(spec) {
    // The engine's module (and better-sqlite3) loads only when a SQLite store opens.
    const { SqliteBackend } = await import('./sqlite-store.js');
    return new SqliteBackend(spec.file);
  },
  openProblem: (_spec, err) => `cannot open: ${err.message}`,
  exists: (spec) => existsSync(spec.file),
  // One write transaction per 100 results, with a turn of the event loop between batches: the store
  // blocks the agent for at most a few milliseconds at a time (issue 11 item 1).
  writeBatch: 100,
});

async function checkSqlitePath(file: string, timeoutMs: number): Promise<void> {
  const where = `store sqlite:${file}`;
  const pseudo = storePathProblem(file);
  if (pseudo) throw new StoreError(`${where}: ${pseudo}`);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new StoreError(
            `${where}: the file system did not answer within ${timeoutMs / 1000} s (a hung network mount?); put the store on a local disk`,
          ),
        ),
      timeoutMs,
    );
    timer.unref();
  });
  // A stat that hangs keeps a libuv thread, not this one: the agent exits with the error all the same.
  try {
    await Promise.race([inspectSqlitePath(file, where), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function inspectSqlitePath(file: string, where: string): Promise<void> {
  const existing = await stat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw fsProblem(where, file, err);
  });
  if (existing) {
    if (!existing.isFile())
      throw new StoreError(`${where}: exists and is not a regular file; point store.url at a database file`);
    await access(file, constants.R_OK | constants.W_OK).catch((err: NodeJS.ErrnoException) => {
      throw fsProblem(where, file, err);
    });
  }
  // SQLite writes its journal beside the file; a missing directory is created, so the nearest existing
  // ancestor must be a directory this process can write in.
  let dir = dirname(file);
  for (;;) {
    const s = await stat(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
      throw fsProblem(where, dir, err);
    });
    if (s) {
      if (!s.isDirectory())
        throw new StoreError(`${where}: ${dir} is not a directory; choose a path under a directory`);
      await access(dir, constants.W_OK).catch((err: NodeJS.ErrnoException) => {
        throw fsProblem(where, dir, err);
      });
      return;
    }
    const up = dirname(dir);
    if (up === dir) return;
    dir = up;
  }
}

function fsProblem(where: string, path: string, err: NodeJS.ErrnoException): StoreError {
  const why =
    err.code === 'EACCES' || err.code === 'EPERM'
      ? `cannot write in ${path} (permission denied): choose a path this user can write, or fix its permissions`
      : err.code === 'EROFS'
        ? `${path} is on a read-only file system: choose a writable path`
        : `${path}: ${err.message}`;
  return new StoreError(`${where}: ${why}`, { cause: err });
}
