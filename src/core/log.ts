/**
 * Structured logs: one line per event, JSON (for Loki or any pipeline) or pretty on a terminal.
 *
 * Every line has `time` (ISO 8601), `level` and `msg` (a fixed phrase: what varies is in fields).
 * Field names are stable; the same name always means the same thing:
 *
 * - `component`   the part of coalmine: agent, probe, transport, canary, coalminer, pair, store, api,
 *                 relay, process, cli
 * - `target`      a probe target's name (the `target` label of its metrics); `kind` its probe kind;
 *                 `address` what it probes, as configured
 * - `transport`   a transport's kind (redis, amqp, mqtt, nats, kafka, postgres, websocket, webhook,
 *                 memory: the `transport` label of the metrics); `transportName` its name in the config
 * - `canary`, `coalminer`, `region`  as configured (the labels of the messaging metrics)
 * - `url`, `dashboard`  URLs, with any password and secret query parameter (`?token=`) replaced by `***`
 * - `err`         an error: `{ name, message, code?, cause? }`; `stack` its stack trace, for bugs
 * - `attempt`, `retryInMs`, `downMs`, `durationMs`, `elapsedMs`  counts, and durations always in ms
 *
 * Secrets are never written: values of secret-named fields (token, password, secret, authorization,
 * api key, cookie) become `***`, and so do passwords in URLs and secret query parameters anywhere in a
 * string, the message included.
 */
import { inspect } from 'node:util';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'pretty' | 'auto';
export type LogFields = Record<string, unknown>;

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Where lines go: a writable stream, optionally a terminal. */
export interface LogStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface LoggerOptions {
  /** `auto` (the default) writes pretty lines to a terminal and JSON lines elsewhere. */
  format?: LogFormat;
  /** Lines below this level are dropped. Default `info`. */
  level?: LogLevel;
  /** Default process.stderr. */
  stream?: LogStream;
  /** Injected for tests; default Date.now. */
  now?: () => number;
}

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger adding `fields` to every line (a `component` field names the part of the agent). */
  child(fields: LogFields): Logger;
}

export const REDACTED = '***';

/**
 * Bounds on what one line can carry, so a hostile value (a 5 MB target, a Location header of 15,000
 * letters, a deep or wide object) costs the same small time as any other: strings keep their first
 * maxString characters and say how many more there were; objects and lists are cut at maxDepth levels
 * and maxItems entries, and a line stops describing values after maxNodes of them.
 */
export const LOG_LIMITS = { maxString: 4096, maxDepth: 8, maxItems: 100, maxNodes: 2000 } as const;

/**
 * Redaction reads at most this much of a string: the first LOG_LIMITS.maxString characters are written,
 * and a secret starting there ends within this window or is cut at its end (and redacted all the same).
 */
const REDACT_WINDOW = 64 * 1024;

/** Field names whose values are secrets, whatever their shape. */
const SECRET_KEY = /token|password|passwd|secret|authorization|api[-_]?key|cookie/i;

/** `text` cut to `max` characters with a marker saying how many were left out. */
export function clipText(text: string, max: number = LOG_LIMITS.maxString, more = text.length - max): string {
  return more > 0 ? `${text.slice(0, max)}…(${more} more characters)` : text;
}

/**
 * `text` with the password of every URL (`scheme://user:password@`) and the value of every secret query
 * parameter (`?token=`, `&api_key=`) replaced by `***`, cut to `max` characters. Linear in the length
 * of the text (hand-written scans: the regexes this replaced took 7 s on 64k characters).
 */
export function redactText(text: string, max: number = LOG_LIMITS.maxString): string {
  const cut = text.length > REDACT_WINDOW;
  const window = cut ? text.slice(0, REDACT_WINDOW) : text;
  const redacted = redactQueryParams(redactUrlPasswords(window, cut));
  return clipText(redacted, max, Math.max(0, redacted.length - max) + (text.length - window.length));
}

function isSpace(c: number): boolean {
  // What \s matches.
  return (
    (c >= 9 && c <= 13) ||
    c === 32 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

function isLetter(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function isSchemeChar(c: number): boolean {
  return isLetter(c) || (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46;
}

const SLASH = 47;
const COLON = 58;
const AT = 64;

/**
 * `scheme://user:password@` to `scheme://user:***@`. Each scan stops at the next `/`, so no character
 * is read more than a few times. With `cut`, a password running into the end of the text was cut off,
 * and is redacted as if its `@` followed.
 */
function redactUrlPasswords(text: string, cut: boolean): string {
  const n = text.length;
  let out = '';
  let last = 0;
  for (let p = text.indexOf('://'); p >= 0; p = text.indexOf('://', p + 1)) {
    // A scheme: a letter, then letters, digits, "+", "." or "-", right before "://".
    let hasLetter = false;
    for (let b = p - 1; b >= last && isSchemeChar(text.charCodeAt(b)); b--)
      hasLetter ||= isLetter(text.charCodeAt(b));
    if (!hasLetter) continue;
    let j = p + 3;
    for (; j < n; j++) {
      const c = text.charCodeAt(j);
      if (c === SLASH || c === COLON || c === AT || isSpace(c)) break;
    }
    if (j >= n || text.charCodeAt(j) !== COLON) continue;
    let k = j + 1;
    for (; k < n; k++) {
      const c = text.charCodeAt(k);
      if (c === AT || c === SLASH || isSpace(c)) break;
    }
    const atEnd = k >= n && cut;
    if (!atEnd && (k >= n || text.charCodeAt(k) !== AT)) continue;
    out += `${text.slice(last, j + 1)}${REDACTED}`;
    last = k;
    p = Math.max(p, k - 1);
  }
  return last === 0 ? text : out + text.slice(last);
}

const QUESTION = 63;
const AMP = 38;
const EQUALS = 61;
const HASH = 35;

/** `?name=value` and `&name=value` with a secret's name to `?name=***`, in one pass. */
export function redactQueryParams(text: string): string {
  const n = text.length;
  let out = '';
  let last = 0;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c !== QUESTION && c !== AMP) {
      i++;
      continue;
    }
    let j = i + 1;
    for (; j < n; j++) {
      const d = text.charCodeAt(j);
      if (d === EQUALS || d === AMP || d === HASH || isSpace(d)) break;
    }
    if (j === i + 1 || j >= n || text.charCodeAt(j) !== EQUALS) {
      // Every "?" up to j would end its name at j too: go on from there.
      i = j > i + 1 ? j : i + 1;
      continue;
    }
    let k = j + 1;
    for (; k < n; k++) {
      const d = text.charCodeAt(k);
      if (d === AMP || d === HASH || isSpace(d)) break;
    }
    if (k > j + 1 && SECRET_KEY.test(text.slice(i + 1, j))) {
      out += `${text.slice(last, j + 1)}${REDACTED}`;
      last = k;
    }
    i = k;
  }
  return last === 0 ? text : out + text.slice(last);
}

/** The fields every line has, in this order; callers' fields cannot overwrite them. */
const RESERVED = new Set(['time', 'level', 'msg']);

interface Walk {
  seen: WeakSet<object>;
  /** Values still to be described on this line. */
  nodes: number;
}

/**
 * Returns a JSON-safe copy of `value` with secrets replaced by `***`: values of secret-named keys,
 * the password part of URLs and secret query parameters (`?token=...`). Bounded by LOG_LIMITS: long
 * strings are cut with a `…(N more characters)` marker, deep values become `[depth limit]`, long lists
 * and objects end with a `…(N more)` entry. Cycles, BigInts, errors, functions and throwing getters
 * never throw.
 */
export function redact(value: unknown, key = ''): unknown {
  return redactValue(value, key, { seen: new WeakSet(), nodes: LOG_LIMITS.maxNodes }, 0);
}

function redactValue(value: unknown, key: string, walk: Walk, depth: number): unknown {
  if (key !== '' && SECRET_KEY.test(key) && value !== undefined && value !== null) return REDACTED;
  switch (typeof value) {
    case 'string':
      return redactText(value);
    case 'bigint':
      return value.toString();
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'function':
      return `[function ${clipText(value.name, 100) || 'anonymous'}]`;
    case 'symbol':
      return redactText(value.toString(), 100);
    case 'undefined':
    case 'boolean':
      return value;
  }
  if (value === null) return null;
  const obj = value as object;
  if (walk.seen.has(obj)) return '[circular]';
  if (depth >= LOG_LIMITS.maxDepth) return '[depth limit]';
  if (walk.nodes <= 0) return '[too many values]';
  walk.seen.add(obj);
  const child = (v: unknown, k: string) => {
    walk.nodes--;
    return redactValue(v, k, walk, depth + 1);
  };
  try {
    if (obj instanceof URL) return redactText(obj.href);
    if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? 'Invalid Date' : obj.toISOString();
    if (obj instanceof Error) {
      const out: LogFields = { name: redactText(String(obj.name), 200), message: child(obj.message, '') };
      const code = (obj as { code?: unknown }).code;
      if (code !== undefined) out.code = child(code, 'code');
      if (obj.cause !== undefined) out.cause = child(obj.cause, 'cause');
      return out;
    }
    if (Array.isArray(obj)) return listOf(obj, obj.length, child);
    if (obj instanceof Set) return listOf(obj, obj.size, child);
    if (ArrayBuffer.isView(obj)) return `[${obj.constructor.name} ${obj.byteLength} bytes]`;
    const out: LogFields = {};
    let count = 0;
    let total = 0;
    const add = (k: string, read: () => unknown) => {
      count++;
      let v: unknown;
      try {
        v = read();
      } catch {
        v = '[unreadable]';
      }
      out[redactText(k, 200)] = child(v, k);
    };
    if (obj instanceof Map) {
      for (const [k, v] of obj) {
        if (count >= LOG_LIMITS.maxItems) break;
        add(String(k), () => v);
      }
      total = obj.size;
    } else {
      const keys = Object.keys(obj);
      for (const k of keys.slice(0, LOG_LIMITS.maxItems)) add(k, () => (obj as Record<string, unknown>)[k]);
      total = keys.length;
    }
    if (total > count) out['…'] = `(${total - count} more)`;
    return out;
  } catch {
    return '[unloggable]';
  } finally {
    // Only cycles are refused; the same object twice side by side is logged twice.
    walk.seen.delete(obj);
  }
}

/** The first LOG_LIMITS.maxItems entries of a list or set, then a `…(N more)` entry. */
function listOf(
  items: Iterable<unknown>,
  size: number,
  child: (v: unknown, k: string) => unknown,
): unknown[] {
  const out: unknown[] = [];
  for (const v of items) {
    if (out.length >= LOG_LIMITS.maxItems) break;
    out.push(child(v, ''));
  }
  if (size > out.length) out.push(`…(${size - out.length} more)`);
  return out;
}

/** A logger that writes nothing: the default of components that take an optional logger. */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};

/** A logger writing one line per call: JSON with stable field names, or pretty for people. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const stream = opts.stream ?? process.stderr;
  const format = opts.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && stream.isTTY === true);
  const min = LEVELS[opts.level ?? 'info'];
  const now = opts.now ?? Date.now;
  return make({}, { stream, pretty, min, now });
}

interface Sink {
  stream: LogStream;
  pretty: boolean;
  min: number;
  now: () => number;
}

function make(bound: LogFields, sink: Sink): Logger {
  const log = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (LEVELS[level] < sink.min) return;
    try {
      const extra = redact({ ...bound, ...fields }) as LogFields;
      for (const k of RESERVED) delete extra[k];
      const time = new Date(sink.now()).toISOString();
      const text = redactText(String(msg));
      const line = sink.pretty
        ? prettyLine(time, level, text, extra)
        : safeJson({ time, level, msg: text, ...extra });
      sink.stream.write(`${line}\n`);
    } catch {
      // Logging must never take the agent down.
    }
  };
  return {
    debug: (msg, fields) => log('debug', msg, fields),
    info: (msg, fields) => log('info', msg, fields),
    warn: (msg, fields) => log('warn', msg, fields),
    error: (msg, fields) => log('error', msg, fields),
    child: (fields) => make({ ...bound, ...fields }, sink),
  };
}

function safeJson(line: LogFields): string {
  try {
    return JSON.stringify(line);
  } catch {
    return JSON.stringify({ time: line.time, level: line.level, msg: line.msg, logError: 'unserializable' });
  }
}

const LEVEL_COLOUR: Record<LogLevel, string> = {
  debug: '\x1b[90m',
  info: '\x1b[36m',
  warn: '\x1b[33m',
  error: '\x1b[31m',
};

function prettyLine(time: string, level: LogLevel, msg: string, fields: LogFields): string {
  const { component, ...rest } = fields;
  const head = `${time.slice(11, 23)} ${LEVEL_COLOUR[level]}${level.toUpperCase().padEnd(5)}\x1b[0m`;
  const comp = component === undefined ? '' : ` [${String(component)}]`;
  const tail = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : inspect(v, { depth: 4, breakLength: Infinity })}`)
    .join(' ');
  return `${head}${comp} ${msg}${tail === '' ? '' : ` ${tail}`}`;
}
