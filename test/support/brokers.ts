import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './net.js';

export interface BrokerCommand {
  /** What it is, for the message when it never answers: `redis-server on port 6400`. */
  name: string;
  command: string;
  args: string[];
  /** Whether it answers yet; a throw counts as not yet. */
  ready(): Promise<boolean>;
  /** How long start() waits for it to answer; default 20 s. */
  readyTimeoutMs?: number;
}

/**
 * A broker process of the test's own (redis-server, mosquitto, nats-server) on a port of its own, so a test
 * can crash it and start it again by its PID without touching the system's service.
 */
export class BrokerProcess {
  private child: ChildProcess | undefined;

  constructor(private readonly spec: BrokerCommand) {}

  /** Starts the process and waits until it answers; resolves with the time it was spawned. */
  async start(): Promise<number> {
    const spawnedAt = Date.now();
    const child = spawn(this.spec.command, this.spec.args, { stdio: 'ignore' });
    child.on('error', () => undefined); // a missing binary shows as the port never opening
    this.child = child;
    await waitFor(
      this.spec.name,
      async () => ((await this.spec.ready()) ? true : undefined),
      this.spec.readyTimeoutMs ?? 20_000,
    );
    return spawnedAt;
  }

  /** SIGKILL by PID: a crash, no goodbye to the clients. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(child.pid!, 'SIGKILL');
    await exited;
  }

  /** SIGSTOP / SIGCONT: a broker that hangs with its sockets open. */
  signal(sig: 'SIGSTOP' | 'SIGCONT'): void {
    if (this.child?.pid) process.kill(this.child.pid, sig);
  }
}

export interface TempDir {
  path: string;
  remove(): Promise<void>;
}

/** A fresh temporary directory for a broker's files, and how to remove it. */
export async function tempDir(prefix: string): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}
