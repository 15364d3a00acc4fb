import { Option } from 'commander';
import { UsageError } from '../core/errors.js';
import { createLogger, type LogFormat, type Logger, type LogLevel } from '../core/log.js';
import { installFatalSignalLog } from './fatal-signals.js';
import type { Io } from './main.js';
import { guardProcess } from './signals.js';

export const LOG_FORMAT_ENV = 'COALMINE_LOG_FORMAT';
export const LOG_LEVEL_ENV = 'COALMINE_LOG_LEVEL';

const FORMATS: readonly LogFormat[] = ['auto', 'json', 'pretty'];
const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** The log flags of a long-running command, as commander parsed them. */
export interface LogFlags {
  logFormat?: LogFormat;
  logLevel?: LogLevel;
}

function oneOf<T extends string>(source: string, allowed: readonly T[], text: string): T {
  const value = text.trim().toLowerCase();
  const found = allowed.find((a) => a === value);
  if (found === undefined)
    throw new UsageError(
      `${source}: expected ${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)} (got "${text}")`,
    );
  return found;
}

/** --log-format, for every long-running command. */
export function logFormatOption(): Option {
  return new Option(
    '--log-format <format>',
    `log lines on stderr: auto (pretty on a terminal, JSON otherwise), json or pretty; default auto, or ${LOG_FORMAT_ENV}`,
  ).argParser((text: string) => oneOf('--log-format', FORMATS, text));
}

/** --log-level, for every long-running command. */
export function logLevelOption(): Option {
  return new Option(
    '--log-level <level>',
    `least severe log lines written: debug, info, warn or error; default info, or ${LOG_LEVEL_ENV}`,
  ).argParser((text: string) => oneOf('--log-level', LEVELS, text));
}

/** The format and level to log with: the flag, else the environment variable, else auto and info. */
export function logSettings(
  flags: LogFlags,
  env: Readonly<Record<string, string | undefined>>,
): { format: LogFormat; level: LogLevel } {
  const fromEnv = <T extends string>(name: string, allowed: readonly T[]): T | undefined => {
    const text = env[name];
    return text === undefined || text.trim() === '' ? undefined : oneOf(name, allowed, text);
  };
  return {
    format: flags.logFormat ?? fromEnv(LOG_FORMAT_ENV, FORMATS) ?? 'auto',
    level: flags.logLevel ?? fromEnv(LOG_LEVEL_ENV, LEVELS) ?? 'info',
  };
}

/**
 * The logging of one CLI invocation. A long-running command starts it with its flags; its log lines go to
 * stderr through `io`, and from then on the process is guarded (see guardProcess), a fatal signal such as
 * SIGBUS leaves a log line (see installFatalSignalLog) and an unexpected failure of the command is logged
 * rather than printed as a bare stack.
 */
export class CliLogging {
  private logger: Logger | undefined;

  constructor(
    private readonly io: Io,
    private readonly env: Readonly<Record<string, string | undefined>>,
  ) {}

  start(flags: LogFlags): Logger {
    const { format, level } = logSettings(flags, this.env);
    const io = this.io;
    this.logger = createLogger({
      format,
      level,
      stream: { write: (chunk) => io.err(chunk.replace(/\n$/, '')), isTTY: io.errIsTty === true },
    });
    guardProcess(this.logger);
    installFatalSignalLog();
    return this.logger;
  }

  /** The logger a long-running command started, if one did. */
  get current(): Logger | undefined {
    return this.logger;
  }
}
