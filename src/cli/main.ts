import { Command, CommanderError } from 'commander';
import { VERSION } from '../agent/agent.js';
import { ListenSafetyError } from '../api/auth.js';
import { ConfigError, UsageError } from '../core/errors.js';
import { StoreError } from '../store/open.js';
import { CliLogging } from './logging.js';

/** Where a command writes; tests pass their own. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** Whether stdout is a terminal (live tables redraw in place). */
  isTty: boolean;
  /** Whether stderr is a terminal: `--log-format auto` then writes pretty lines. Default false. */
  errIsTty?: boolean;
}

interface CommandContext {
  io: Io;
  logging: CliLogging;
  env: Readonly<Record<string, string | undefined>>;
  setExit: (code: number) => void;
}

/** Every command, in the order `--help` lists them, with the module that defines it. */
const COMMANDS: { names: readonly string[]; load(): Promise<(p: Command, c: CommandContext) => void> }[] = [
  {
    names: ['probe'],
    load: async () => {
      const { probeCommand } = await import('./commands/probe.js');
      return (p, c) => probeCommand(p, c.io, c.setExit);
    },
  },
  {
    names: ['pair', 'canary', 'coalminer', 'relay'],
    load: async () => {
      const { messagingCommands } = await import('./commands/messaging.js');
      return (p, c) => messagingCommands(p, c.io, c.logging, c.setExit);
    },
  },
  {
    names: ['run'],
    load: async () => {
      const { runCommand } = await import('./commands/run.js');
      return (p, c) => runCommand(p, c.io, c.logging);
    },
  },
  {
    names: ['export'],
    load: async () => {
      const { exportCommand } = await import('./commands/export.js');
      return (p, c) => exportCommand(p, c.io);
    },
  },
  {
    names: ['alerts'],
    load: async () => {
      const { alertsCommand } = await import('./commands/alerts.js');
      return (p, c) => alertsCommand(p, c.io, c.setExit, c.env);
    },
  },
  {
    names: ['config'],
    load: async () => {
      const { configCommand } = await import('./commands/config.js');
      return (p, c) => configCommand(p, c.io);
    },
  },
  {
    names: ['target'],
    load: async () => {
      const { targetCommand } = await import('./commands/target.js');
      return (p, c) => targetCommand(p, c.io);
    },
  },
  {
    names: ['demo'],
    load: async () => {
      const { demoCommand } = await import('./commands/demo.js');
      return (p, c) => demoCommand(p, c.io, c.logging);
    },
  },
];

export const processIo: Io = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
  isTty: Boolean(process.stdout.isTTY),
  errIsTty: Boolean(process.stderr.isTTY),
};

/**
 * Runs the CLI and resolves to the exit code: 0 ok, 1 a probe failed (or a long-running command failed
 * unexpectedly, which it logs), 2 bad usage or config. `env` is read for COALMINE_LOG_FORMAT and _LEVEL.
 */
export async function main(
  argv: readonly string[],
  io: Io = processIo,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  let exitCode = 0;
  const logging = new CliLogging(io, env);
  const program = new Command('coalmine')
    .description(
      'Measures how long messages take to cross a network or messaging system, and whether they arrive.',
    )
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s.replace(/\n$/, '')),
      writeErr: (s) => io.err(s.replace(/\n$/, '')),
    });
  const ctx: CommandContext = { io, logging, env, setExit: (c) => (exitCode = c) };
  // Only the command being run is loaded (each pulls in its own libraries); help and a mistyped
  // command word load them all, so that help lists every command and commander can suggest one.
  const word = argv[2];
  const chosen = COMMANDS.filter((c) => word !== undefined && c.names.includes(word));
  for (const c of chosen.length > 0 ? chosen : COMMANDS) (await c.load())(program, ctx);
  for (const c of program.commands) {
    c.exitOverride();
    for (const sub of c.commands) sub.exitOverride();
  }
  try {
    await program.parseAsync(argv as string[]);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.code === 'commander.help'
        ? 0
        : 2;
    }
    if (err instanceof ConfigError) {
      io.err(
        err.problems.length === 1 ? `error: ${err.problems[0]}` : `error: ${err.problems.length} problems:`,
      );
      if (err.problems.length > 1) for (const p of err.problems) io.err(`  ${p}`);
      return 2;
    }
    // What the config asks for cannot be had (a store that cannot be opened, an address that is not
    // safe to serve on): the config is to fix, so exit 2 with the one line that says how.
    if (err instanceof UsageError || err instanceof StoreError || err instanceof ListenSafetyError) {
      io.err(`error: ${err.message}`);
      return 2;
    }
    const code = (err as { code?: string }).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') {
      io.err(`error: cannot listen: ${(err as Error).message}`);
      return 2;
    }
    const log = logging.current;
    if (!log) throw err;
    log.error('stopped by an error', {
      component: 'cli',
      err,
      ...(err instanceof Error && err.stack ? { stack: err.stack } : {}),
    });
    return 1;
  }
}
