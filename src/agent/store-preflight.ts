import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { storePathProblem } from '../config/store-url.js';
import { redactText } from '../core/log.js';
import { openStore, parseStoreSpec, StoreError, type OpenStoreOptions } from '../store/open.js';
import type { ResultStore } from '../store/types.js';

/** How long the file system may take to answer about the store's path (a hung network mount does not). */
export const STORE_CHECK_TIMEOUT_MS = 5000;

/**
 * Opens the store a spec names, after checking what can hang or fail obscurely, so that each failure is
 * one StoreError saying what to fix: a path under /proc, /sys or /dev, an existing file that is not a
 * regular file (a FIFO blocks SQLite's open forever), a directory that cannot be created or written,
 * a file system that does not answer within `timeoutMs`, a PostgreSQL server that cannot be reached.
 */
export async function openCheckedStore(
  spec: string,
  opts: OpenStoreOptions = {},
  timeoutMs = STORE_CHECK_TIMEOUT_MS,
): Promise<ResultStore> {
  const parsed = parseStoreSpec(spec);
  if (parsed.engine === 'sqlite') await checkSqlitePath(parsed.file, timeoutMs);
  try {
    return await openStore(spec, opts);
  } catch (err) {
    if (parsed.engine !== 'postgres' || !(err instanceof StoreError)) throw err;
    throw new StoreError(postgresProblem(parsed.url, err), { cause: err.cause });
  }
}

const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: 'connection refused: is it running?',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name does not resolve now',
};

/** Says where PostgreSQL was looked for and what to do, for a server that cannot be reached. */
function postgresProblem(url: string, err: StoreError): string {
  const u = new URL(url);
  const code = (err.cause as { code?: unknown } | undefined)?.code;
  const why = typeof code === 'string' ? UNREACHABLE[code] : undefined;
  if (why === undefined) return err.message;
  return `store ${redactText(url, 200)}: cannot connect to PostgreSQL at ${u.hostname}:${u.port || '5432'} (${why}): start it there, fix store.url, or use sqlite:PATH`;
}

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
