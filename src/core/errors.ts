/**
 * Named error classes. Expected failures of a probe are values (ProbeError in types.ts), not these:
 * these are for bad input and for bugs, and every one says what to fix.
 */
export class CoalmineError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A config file or option that does not validate. `problems` lists every one, each with where it is. */
export class ConfigError extends CoalmineError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[], options?: { cause?: unknown }) {
    super(
      problems.length === 1 ? problems[0]! : `${problems.length} problems:\n  ${problems.join('\n  ')}`,
      options,
    );
    this.problems = problems;
  }
}

/** Wrong command-line usage: exit code 2. */
export class UsageError extends CoalmineError {}

/** A capability the host does not give us (raw sockets, a native module), with what to do about it. */
export class UnsupportedError extends CoalmineError {}
