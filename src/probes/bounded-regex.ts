import type { Context, Script } from 'node:vm';
import { lazyBuiltin } from '../core/builtin.js';
import { CoalmineError } from '../core/errors.js';

/**
 * The longest one check with a user's regular expression may run on what a target sent (a body, the
 * data of a TCP exchange, DNS records). JavaScript regexes backtrack: `.*foo.*` takes 0.4 s on 16 KiB
 * of one line without "foo" and half an hour on 1 MiB, and the event loop (every other probe's timing
 * included) waits for it. Past this limit the check stops and the probe fails with a validation error.
 */
export const REGEX_TIME_LIMIT_MS = 50;

/** Whether `source` compiles as a JavaScript regular expression (for config checks of users' patterns). */
export function isValidRegex(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

/** A regular-expression check that ran out of time; the probe reports it as a validation failure. */
export class RegexTimeLimitError extends CoalmineError {
  constructor(readonly pattern: string) {
    super(
      `the regular expression /${pattern.length > 200 ? `${pattern.slice(0, 200)}…` : pattern}/ took over ${REGEX_TIME_LIMIT_MS} ms on the data received (it backtracks: anchor it or avoid nested and leading .* quantifiers)`,
    );
  }
}

// vm's timeout is the one way to interrupt a running regex without a thread: it stops whatever runs
// inside runInContext, and the regex runs there. One context serves every call: it holds no state
// between calls (`task` is set and cleared around each), and calls never overlap (they are synchronous).
// It is made on the first check: a context is a second set of JavaScript globals, which an agent
// without regex checks need not hold.
const vm = lazyBuiltin<typeof import('node:vm')>('node:vm');
const sandbox: { task?: () => unknown } = {};
let sandboxed: { context: Context; runTask: Script } | undefined;

/**
 * Runs `task` (regular-expression work on untrusted text), stopping it after `limitMs`. Throws
 * RegexTimeLimitError naming `pattern` when it is stopped.
 */
export function withRegexTimeLimit<T>(pattern: string, task: () => T, limitMs = REGEX_TIME_LIMIT_MS): T {
  sandboxed ??= { context: vm().createContext(sandbox), runTask: new (vm().Script)('task()') };
  sandbox.task = task;
  try {
    return sandboxed.runTask.runInContext(sandboxed.context, { timeout: limitMs }) as T;
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT')
      throw new RegexTimeLimitError(pattern);
    throw err;
  } finally {
    sandbox.task = undefined;
  }
}

/** `re.test(text)` within the time limit. */
export function boundedTest(re: RegExp, text: string, pattern = re.source): boolean {
  return withRegexTimeLimit(pattern, () => re.test(text));
}
