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

/** Field names whose values are secrets, whatever their shape. */
const SECRET_KEY = /token|password|passwd|secret|authorization|api[-_]?key|cookie/i;
/** user:password@ in any URL-looking text. */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)[^@\s/]*@/gi;
/** A `?name=value` or `&name=value` query parameter; redacted when its name is a secret's. */
const QUERY_PARAM = /([?&])([^=&#\s]+)=([^&#\s]*)/g;

function redactText(text: string): string {
  return text
    .replace(URL_PASSWORD, `$1${REDACTED}@`)
    .replace(QUERY_PARAM, (whole, sep: string, name: string, value: string) =>
      value !== '' && SECRET_KEY.test(name) ? `${sep}${name}=${REDACTED}` : whole,
    );
}

/** The fields every line has, in this order; callers' fields cannot overwrite them. */
const RESERVED = new Set(['time', 'level', 'msg']);

/**
 * Returns a JSON-safe copy of `value` with secrets replaced by `***`: values of secret-named keys,
 * the password part of URLs and secret query parameters (`?token=...`). Cycles, BigInts, errors, functions and throwing getters never throw.
 */
export function redact(value: unknown, key = '', seen = new WeakSet<object>()): unknown {
  if (key !== '' && SECRET_KEY.test(key) && value !== undefined && value !== null) return REDACTED;
  switch (typeof value) {
    case 'string':
      return redactText(value);
    case 'bigint':
      return value.toString();
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'function':
      return `[function ${value.name || 'anonymous'}]`;
    case 'symbol':
      return value.toString();
    case 'undefined':
    case 'boolean':
      return value;
  }
  if (value === null) return null;
  const obj = value as object;
  if (seen.has(obj)) return '[circular]';
  seen.add(obj);
  try {
    if (obj instanceof URL) return redact(obj.href, '', seen);
    if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? 'Invalid Date' : obj.toISOString();
    if (obj instanceof Error) {
      const out: LogFields = { name: obj.name, message: redact(obj.message, '', seen) };
      const code = (obj as { code?: unknown }).code;
      if (code !== undefined) out.code = redact(code, 'code', seen);
      if (obj.cause !== undefined) out.cause = redact(obj.cause, 'cause', seen);
      return out;
    }
    if (Array.isArray(obj)) return obj.map((v) => redact(v, '', seen));
    if (obj instanceof Map) {
      const out: LogFields = {};
      for (const [k, v] of obj) out[String(k)] = redact(v, String(k), seen);
      return out;
    }
    if (obj instanceof Set) return [...obj].map((v) => redact(v, '', seen));
    if (ArrayBuffer.isView(obj)) return `[${obj.constructor.name} ${obj.byteLength} bytes]`;
    const out: LogFields = {};
    for (const k of Object.keys(obj)) {
      let v: unknown;
      try {
        v = (obj as Record<string, unknown>)[k];
      } catch {
        v = '[unreadable]';
      }
      out[k] = redact(v, k, seen);
    }
    return out;
  } catch {
    return '[unloggable]';
  } finally {
    // Only cycles are refused; the same object twice side by side is logged twice.
    seen.delete(obj);
  }
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
