import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { CoalmineError } from '../../core/errors.js';

/** SQLite's -shm file shrank under its memory map; it was restored, and SQLite rebuilds its index. */
export class ShmTruncatedError extends CoalmineError {}

/**
 * Stands between the agent and the one store failure that cannot be caught: in WAL mode SQLite maps the
 * database's -shm file (its WAL index) into memory, and touching a page of the map past the end of a
 * file that another process truncated raises SIGBUS, which kills Node on the spot with no log line (a
 * full disk or a read-only file, by contrast, come back as SqliteErrors). So before each use of the
 * database this checks that the file has not shrunk; if it has, it writes it back to its size as zeros,
 * which SQLite takes for an uninitialised index and rebuilds from the WAL, and throws, so the write
 * fails once through the writer's error path (logged, counted, retried) instead of killing the agent.
 *
 * What it cannot cover: a truncation in the microseconds between the check and the statement, and a
 * file replaced or removed (SQLite keeps the old one mapped, which does not fault; other processes
 * then see another index). The alternative, `locking_mode = EXCLUSIVE` (no -shm at all: the index lives
 * in heap memory), would lock out every other reader such as `coalmine export` of a live store.
 */
export class ShmGuard {
  private size = 0;
  private ino: number | undefined;
  private repairsCount = 0;

  constructor(readonly path: string) {
    this.check();
  }

  /** How many times the file was found truncated and restored. */
  get repairs(): number {
    return this.repairsCount;
  }

  /** Throws ShmTruncatedError (after restoring the file) when the file shrank since the last check. */
  check(): void {
    let st;
    try {
      st = statSync(this.path, { throwIfNoEntry: false });
    } catch {
      return; // cannot look: SQLite reports what it can
    }
    if (st === undefined) return; // not created yet, or removed: nothing of it is mapped to fault on
    if (st.ino !== this.ino) {
      this.ino = st.ino;
      this.size = st.size;
      return;
    }
    if (st.size >= this.size) {
      this.size = st.size;
      return;
    }
    const was = this.size;
    this.restore();
    this.repairsCount++;
    throw new ShmTruncatedError(
      `SQLite's shared-memory file ${this.path} was truncated by another process from ${was} to ${st.size} bytes ` +
        '(touching it would have crashed the agent with SIGBUS); restored its size, SQLite rebuilds its index from the WAL',
    );
  }

  private restore(): void {
    const fd = openSync(this.path, 'r+');
    try {
      const zeros = Buffer.alloc(Math.min(this.size, 1 << 20));
      for (let at = 0; at < this.size; at += zeros.length)
        writeSync(fd, zeros, 0, Math.min(zeros.length, this.size - at), at);
    } finally {
      closeSync(fd);
    }
  }
}
