import { existsSync, statSync } from 'node:fs';
import { ConfigError } from '../core/errors.js';
import { redactUrl } from './base.js';

/** A positive integer query parameter of a transport URL, or `fallback` when it is absent. */
export function positiveIntParam(u: URL, name: string, fallback: number): number {
  const raw = u.searchParams.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

/**
 * Reads a transport URL's query options and collects every problem instead of stopping at the first,
 * so `config check` and a command's start list all of them and run time reads the same values.
 * Each kind's `url.ts` reads its options through one of these and reports `problems`.
 *
 * A value that is a secret (a password, a token) is never quoted in a problem: only its option's name.
 */
export class UrlOptions {
  readonly problems: string[] = [];
  private readonly params: URLSearchParams;

  /** `known` lists every option the URL may carry; any other is reported once as unknown. */
  constructor(
    query: URLSearchParams | string,
    known: readonly string[],
    private readonly scheme: string,
  ) {
    this.params = typeof query === 'string' ? new URLSearchParams(query) : query;
    const seen = new Set<string>();
    for (const key of this.params.keys()) {
      if (seen.has(key)) continue;
      seen.add(key);
      if (!known.includes(key))
        this.problems.push(
          known.length
            ? `unknown option ${key}= for ${scheme}:// (known: ${known.join(', ')})`
            : `unknown option ${key}= (${scheme}:// takes no options)`,
        );
      else if (this.params.getAll(key).length > 1)
        this.problems.push(`${key}= is given more than once; give it once`);
    }
  }

  problem(text: string): void {
    this.problems.push(text);
  }

  has(name: string): boolean {
    return this.params.has(name);
  }

  /** A string option, or undefined when absent; an empty value is reported unless `allowEmpty`. */
  string(name: string, opts: { allowEmpty?: boolean } = {}): string | undefined {
    const raw = this.params.get(name);
    if (raw === null) return undefined;
    if (raw === '' && !opts.allowEmpty) {
      this.problems.push(`${name}= is empty; give it a value or leave it out`);
      return undefined;
    }
    return raw;
  }

  /** A string that must match `pattern`; `what` says what is allowed. */
  matching(name: string, pattern: RegExp, what: string): string | undefined {
    const raw = this.string(name);
    if (raw !== undefined && !pattern.test(raw)) {
      this.problems.push(`${name}= must be ${what}, got ${JSON.stringify(raw)}`);
      return undefined;
    }
    return raw;
  }

  /** true/false (or 1/0), or `fallback` when absent. */
  boolean(name: string, fallback: boolean): boolean {
    const raw = this.params.get(name);
    if (raw === null) return fallback;
    const v = raw.toLowerCase();
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    this.problems.push(`${name}= must be true or false (or 1 or 0), got ${JSON.stringify(raw)}`);
    return fallback;
  }

  /** An integer from `min` to `max`, or `fallback` when absent; `unit` is said in the problem. */
  integer(name: string, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER, unit = ''): number {
    const raw = this.params.get(name);
    if (raw === null) return fallback;
    const n = raw.trim() === '' ? NaN : Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      const range =
        max === Number.MAX_SAFE_INTEGER
          ? min === 1
            ? 'a positive integer'
            : `an integer of at least ${min}`
          : `an integer from ${min} to ${max}`;
      this.problems.push(`${name}= must be ${range}${unit ? ` (${unit})` : ''}, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return n;
  }

  /** One of `values` (case-insensitive, returned as listed), or `fallback` when absent. */
  oneOf<T extends string>(name: string, values: readonly T[], fallback: T): T {
    const raw = this.params.get(name);
    if (raw === null) return fallback;
    const found = values.find((v) => v.toLowerCase() === raw.toLowerCase());
    if (found === undefined) {
      this.problems.push(`${name}= must be one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return found;
  }

  /** A path to a file that must exist and be readable as a file (a certificate, a key, a creds file). */
  file(name: string): string | undefined {
    const path = this.string(name);
    if (path === undefined) return undefined;
    if (!existsSync(path)) {
      this.problems.push(`${name}=${path}: no such file`);
      return undefined;
    }
    if (!statSync(path).isFile()) {
      this.problems.push(`${name}=${path}: not a file`);
      return undefined;
    }
    return path;
  }

  /** The name of an environment variable that must be set (its value is returned, never quoted). */
  env(name: string): string | undefined {
    const variable = this.matching(name, /^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');
    if (variable === undefined) return undefined;
    const value = process.env[variable];
    if (value === undefined || value === '') {
      this.problems.push(`${name}=${variable}: the environment variable ${variable} is not set`);
      return undefined;
    }
    return value;
  }
}

/** What a kind's URL reader gives: the parsed value (absent when the URL cannot be read at all) and every problem. */
export interface UrlReading<T> {
  value: T | undefined;
  problems: string[];
}

/**
 * The value of a reading, or a ConfigError listing every problem, each after the URL as shown in logs
 * (`display`, by default the URL with its password masked).
 */
export function valueOrThrow<T>(url: string, reading: UrlReading<T>, display = redactUrl(url)): T {
  if (reading.problems.length || reading.value === undefined)
    throw new ConfigError(
      (reading.problems.length ? reading.problems : ['cannot be read']).map((p) => `${display}: ${p}`),
    );
  return reading.value;
}
