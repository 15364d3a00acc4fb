import { accessSync, constants, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { isMap, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { parseDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import { clipText, redactText } from '../core/log.js';
import { probes } from '../probes/registry.js';
import { resolveOtlpConfig } from '../sinks/otlp/config.js';
import { loadTransportUrlChecker, transportKindOf } from '../transports/registry.js';
import { describeRange, DURATION_RANGES } from './duration.js';
import { MIN_SECRET_LENGTH, type MessagingConfig } from './messaging.js';
import { referenceProblems } from './references.js';
import { transportUrlProblems } from './transport-urls.js';
import {
  bucketBounds,
  configSchema,
  DEFAULT_BUCKETS,
  DEFAULT_INTERVAL_MS,
  DEFAULT_LISTEN,
  DEFAULT_TIMEOUT_MS,
  type AgentConfig,
  type RawConfig,
  type TargetConfig,
} from './schema.js';
import { storeSpecProblem } from '../store/open.js';

type PathKey = string | number;

/** Environment variables that override the default interval; the first one set wins. */
export const INTERVAL_ENV = ['COALMINE_CHECK_INTERVAL', 'CHECK_INTERVAL'] as const;

/** The largest config file read: far above any real one, low enough to parse in a second or two. */
export const MAX_CONFIG_BYTES = 10 * 1024 * 1024;
/** The deepest nesting of mappings and lists accepted; a real config is under 10 levels deep. */
export const MAX_CONFIG_DEPTH = 64;
/** A problem's line is cut here, and at most this many problems are listed: each says what to fix. */
const MAX_PROBLEM = 1000;
const MAX_PROBLEMS = 100;
/** How much aliases may expand (the yaml package's maxAliasCount): stops a billion laughs. */
export const MAX_ALIAS_COUNT = 100;

/** Reads and validates a config file. Throws ConfigError listing every problem with its file:line. */
export async function loadConfigFile(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<AgentConfig> {
  const text = await readConfigText(file);
  return parseConfig(text, file, env, await loadTransportUrlChecker());
}

/**
 * The file's text, refused with a ConfigError when it is not a regular file (a FIFO would block the
 * read), is larger than MAX_CONFIG_BYTES, or is not UTF-8 text (binary content is never echoed).
 */
async function readConfigText(file: string): Promise<string> {
  let bytes: Buffer;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new ConfigError([`${file}: not a regular file`]);
      if (stat.size > MAX_CONFIG_BYTES) throw tooLarge(file, stat.size);
      bytes = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as { code?: string }).code;
    throw new ConfigError(
      [
        code === 'ENOENT'
          ? `${file}: no such file`
          : code === 'EISDIR'
            ? `${file}: not a regular file`
            : `${file}: cannot read: ${(err as Error).message}`,
      ],
      { cause: err },
    );
  }
  if (bytes.length > MAX_CONFIG_BYTES) throw tooLarge(file, bytes.length);
  const text = decodeText(bytes);
  if (text === undefined) throw new ConfigError([`${file}: not a YAML text file (it is not UTF-8 text)`]);
  return text;
}

function tooLarge(file: string, size: number): ConfigError {
  return new ConfigError([
    `${file}: ${(size / 1024 / 1024).toFixed(1)} MiB is too large for a config file (at most ${MAX_CONFIG_BYTES / 1024 / 1024} MiB)`,
  ]);
}

/** UTF-8 text without NUL bytes, or undefined. */
function decodeText(bytes: Uint8Array): string | undefined {
  if (bytes.includes(0)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * `checkTransportUrl`, when given, checks every transport URL's options as its transport would when it
 * starts (registry.ts loadTransportUrlChecker); loadConfigFile always gives it.
 */
export function parseConfig(
  text: string,
  file = 'config',
  env: NodeJS.ProcessEnv = {},
  checkTransportUrl?: (url: string) => string[],
): AgentConfig {
  if (text.length > MAX_CONFIG_BYTES) throw tooLarge(file, text.length);
  if (text.includes('\0')) throw new ConfigError([`${file}: not a YAML text file (it holds NUL characters)`]);
  const lineCounter = new LineCounter();
  const where = (offset: number | undefined) => {
    if (offset === undefined) return file;
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  let doc: Document;
  try {
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  } catch (err) {
    throw yamlLimitError(err, file);
  }
  if (doc.errors.length > 0) {
    // Where the parser's stack ran out says nothing useful (and depends on the stack's size).
    if (doc.errors.some((e) => isStackOverflow(e.message)))
      throw new ConfigError([`${file}: YAML: ${tooDeep}`]);
    throw new ConfigError(
      doc.errors
        .slice(0, MAX_PROBLEMS)
        .map((e) => `${where(e.pos[0])}: YAML: ${redactText(firstLine(e.message), 200)}`),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (err) {
    throw yamlLimitError(err, file);
  }
  const deepAt = tooDeepPath(data);
  if (deepAt !== undefined)
    throw new ConfigError([
      `${where(offsetOf(doc, deepAt))}: ${formatPath(deepAt.slice(0, 6))}…: ${tooDeep}`,
    ]);
  const located = (path: PathKey[], message: string) =>
    clipText(`${where(offsetOf(doc, path))}: ${formatPath(path)}: ${message}`, MAX_PROBLEM);
  // Read from the data as written, so that they are listed even when the schema refuses the file.
  const references = [
    ...referenceProblems(data),
    ...(checkTransportUrl
      ? transportUrlProblems(data, checkTransportUrl, (u) => transportKindOf(u) !== undefined)
      : []),
  ].map((r) => located(r.path, r.message));
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .flatMap(unionBranchIssues)
      .map((i) => clipText(describeIssue(i, doc, where, data), MAX_PROBLEM));
    // The schema checks a rule's notifiers itself when the rest of its section is well formed.
    throw new ConfigError([...new Set([...issues, ...references])].slice(0, MAX_PROBLEMS));
  }
  const problems: string[] = [...references];
  const problem = (path: PathKey[], message: string) => problems.push(located(path, message));
  const raw = parsed.data;

  let intervalMs = raw.interval ?? DEFAULT_INTERVAL_MS;
  for (const name of INTERVAL_ENV) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const ms = parseDuration(v);
    const range = DURATION_RANGES.interval;
    if (ms === undefined || ms <= 0) {
      problems.push(
        `environment variable ${name}: expected a duration like 15s or a number of seconds (got ${JSON.stringify(redactText(v, 40))})`,
      );
    } else if (ms < range.min || ms > range.max) {
      problems.push(
        `environment variable ${name}: must be ${describeRange(range)} (got ${redactText(v, 40)})`,
      );
    } else {
      intervalMs = ms;
    }
    break;
  }
  if (intervalMs <= 0) problem(['interval'], 'must be greater than 0');
  const defaultTimeoutMs = raw.timeout ?? DEFAULT_TIMEOUT_MS;
  const globalBuckets = bucketBounds(raw.metrics.buckets ?? DEFAULT_BUCKETS);

  const seen = new Map<string, number>();
  const targets: TargetConfig[] = [];
  raw.targets.forEach((t, i) => {
    const prev = seen.get(t.name);
    if (prev !== undefined)
      problem(['targets', i, 'name'], `duplicate name "${t.name}" (also targets[${prev}])`);
    seen.set(t.name, i);
    const tInterval = t.interval ?? intervalMs;
    if (tInterval <= 0) problem(['targets', i, 'interval'], 'must be greater than 0');
    let tTimeout: number;
    if (t.timeout !== undefined) {
      tTimeout = t.timeout;
      if (tTimeout <= 0) problem(['targets', i, 'timeout'], 'must be greater than 0');
      else if (tTimeout >= tInterval) {
        problem(
          ['targets', i, 'timeout'],
          `must be below the interval (${tInterval} ms), so runs never overlap`,
        );
      }
    } else {
      tTimeout = Math.min(defaultTimeoutMs, Math.floor(tInterval * 0.9));
    }
    const { name, kind, target, interval: _i, timeout: _t, ...options } = t;
    targets.push({
      name,
      kind,
      target,
      intervalMs: tInterval,
      timeoutMs: tTimeout,
      options,
    });
  });
  if (raw.store) {
    const why = storeSpecProblem(raw.store.url);
    if (why) problem(['store', 'url'], why);
  }
  const messaging = resolveMessaging(raw, problem, env);
  if (raw.alerting) checkAlerting(raw, problem, env);
  const otlp = raw.otlp && resolveOtlpConfig(raw.otlp, env, problem, (m) => problems.push(m));
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    messaging,
    ...(raw.store !== undefined ? { store: raw.store } : {}),
    ...(raw.api !== undefined ? { api: raw.api } : {}),
    ...(raw.alerting !== undefined ? { alerting: raw.alerting } : {}),
    ...(otlp ? { otlp } : {}),
    intervalMs,
    probes: raw.probes,
    listen: parseListen(raw.listen ?? DEFAULT_LISTEN),
    metrics: { compat: raw.metrics.compat, buckets: globalBuckets, targetBuckets: raw.metrics.targetBuckets },
    targets,
  };
}

function isReadableFile(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * Secrets named by `*Env` must be set in the environment the agent starts in, and a CA file readable.
 * (What rules watch and notify is checked with the other references, in references.ts.)
 */
function checkAlerting(
  raw: RawConfig,
  problem: (path: PathKey[], message: string) => void,
  env: NodeJS.ProcessEnv,
): void {
  const alerting = raw.alerting!;
  alerting.notifiers.forEach((n, i) => {
    if (n.email?.caFile !== undefined && !isReadableFile(n.email.caFile))
      problem(['alerting', 'notifiers', i, 'email', 'caFile'], `cannot read ${n.email.caFile}`);
    for (const [kind, body] of Object.entries(n)) {
      if (body === null || typeof body !== 'object') continue;
      for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
        if (!key.endsWith('Env') || typeof value !== 'string') continue;
        if (env[value] === undefined || env[value] === '')
          problem(
            ['alerting', 'notifiers', i, kind, key],
            `environment variable ${value} is not set (it should hold the ${key.slice(0, -3)})`,
          );
      }
    }
  });
}

/** Resolves transport references and checks names are unique. */
function resolveMessaging(
  raw: RawConfig,
  problem: (path: PathKey[], message: string) => void,
  env: NodeJS.ProcessEnv,
): MessagingConfig {
  const transports = new Map<string, string>();
  raw.transports.forEach((t, i) => {
    if (transports.has(t.name)) problem(['transports', i, 'name'], `duplicate transport name "${t.name}"`);
    transports.set(t.name, t.url);
  });
  // An unknown name is one of the reference problems (references.ts), already listed.
  const resolve = (ref: string): string => {
    if (!transports.has(ref) && transportKindOf(ref)) transports.set(ref, ref);
    return ref;
  };
  const unique = (list: { name: string }[], what: 'canaries' | 'coalminers') => {
    const seen = new Set<string>();
    list.forEach((e, i) => {
      if (seen.has(e.name))
        problem(
          [what, i, 'name'],
          `duplicate ${what === 'canaries' ? 'canary' : 'coalminer'} name "${e.name}"`,
        );
      seen.add(e.name);
    });
  };
  unique(raw.canaries, 'canaries');
  unique(raw.coalminers, 'coalminers');
  const secret = (name: string | undefined, path: PathKey[]): { secret?: string } => {
    if (name === undefined) return {};
    const value = env[name];
    if (value === undefined || value === '')
      problem(path, `environment variable ${name} is not set (it should hold the shared secret)`);
    else if (value.length < MIN_SECRET_LENGTH)
      problem(
        path,
        `the secret in ${name} is ${value.length} characters; use ${MIN_SECRET_LENGTH} or more (e.g. openssl rand -hex 16)`,
      );
    else return { secret: value };
    return {};
  };
  return {
    transports,
    canaries: raw.canaries.map((c, i) => ({
      ...c,
      transportName: resolve(c.transport),
      ...secret(c.secretEnv, ['canaries', i, 'secretEnv']),
    })),
    coalminers: raw.coalminers.map((c, i) => ({
      ...c,
      transportName: resolve(c.transport),
      ...secret(c.secretEnv, ['coalminers', i, 'secretEnv']),
    })),
  };
}

/** `host:port` or `[v6]:port` to its parts; the host may be empty (all interfaces). */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535)
    throw new ConfigError([
      `listen address ${JSON.stringify(text)}: expected HOST:PORT, e.g. 127.0.0.1:9777`,
    ]);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function firstLine(s: string): string {
  const end = s.indexOf('\n');
  return end < 0 ? s : s.slice(0, end);
}

const tooDeep = `nested more than ${MAX_CONFIG_DEPTH} levels deep (mappings and lists inside each other)`;

function isStackOverflow(message: string): boolean {
  return message.includes('Maximum call stack size exceeded');
}

/** The yaml package's own limits (alias expansion, recursion) as a ConfigError; anything else is rethrown. */
function yamlLimitError(err: unknown, file: string): unknown {
  const message = err instanceof Error ? err.message : '';
  if (err instanceof ReferenceError && message.includes('alias'))
    return new ConfigError(
      [
        `${file}: YAML: aliases (*name) expand to too much data (more than ${MAX_ALIAS_COUNT} aliased nodes): write the values out, or alias less`,
      ],
      { cause: err },
    );
  if (err instanceof RangeError || isStackOverflow(message))
    return new ConfigError([`${file}: YAML: ${tooDeep}`], { cause: err });
  if (err instanceof Error && err.name === 'YAMLError')
    return new ConfigError([`${file}: YAML: ${redactText(firstLine(message), 200)}`], { cause: err });
  return err;
}

/** The path of the first value nested deeper than MAX_CONFIG_DEPTH, found without recursion. */
function tooDeepPath(data: unknown): PathKey[] | undefined {
  const stack: { value: unknown; path: PathKey[] }[] = [{ value: data, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    if (path.length >= MAX_CONFIG_DEPTH) return path;
    if (Array.isArray(value)) value.forEach((v, i) => stack.push({ value: v, path: [...path, i] }));
    else for (const [k, v] of Object.entries(value)) stack.push({ value: v, path: [...path, k] });
  }
  return undefined;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) {
    // A key can be any length: a path shows 100 characters of each.
    if (typeof k === 'number') out += `[${k}]`;
    else out += `${out === '' ? '' : '.'}${redactText(String(k), 100)}`;
  }
  return out === '' ? '(top level)' : out;
}

/** Source offset of the deepest node that exists along `path`. */
function offsetOf(doc: Document, path: readonly PropertyKey[], key?: string): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as PathKey[], true) as Node | undefined;
    if (node === undefined || node === null) continue;
    if (n === path.length && key !== undefined && isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
      const k = pair?.key as Node | undefined;
      if (k?.range) return k.range[0];
    }
    if (node.range) return node.range[0];
  }
  return undefined;
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let v = data;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

function describeIssue(
  issue: z.core.$ZodIssue,
  doc: Document,
  where: (o: number | undefined) => string,
  data: unknown,
): string {
  const path = issue.path;
  const got = valueAt(data, path);
  let message: string;
  let key: string | undefined;
  const kindIssue = path[0] === 'targets' && path.length === 3 && path[2] === 'kind';
  if (kindIssue && issue.code !== 'invalid_type') {
    const kinds = Object.keys(probes).join(', ');
    const itemPath = path.slice(0, 2);
    if (got === undefined)
      return `${where(offsetOf(doc, itemPath))}: ${formatPath(itemPath)}: missing "kind" (one of ${kinds})`;
    return `${where(offsetOf(doc, path))}: ${formatPath(path)}: unknown kind ${JSON.stringify(got)} (one of ${kinds})`;
  }
  switch (issue.code) {
    case 'unrecognized_keys': {
      key = issue.keys[0];
      const allowed = allowedKeys(path, data);
      const names = issue.keys.map((k) => `"${redactText(k, 100)}"`).join(', ');
      message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${names}${allowed ? ` (allowed: ${allowed.join(', ')})` : ''}`;
      break;
    }
    case 'invalid_type':
      message =
        got === undefined
          ? `required ${issue.expected} is missing`
          : // A schema's own message ("must be a whole number from 1 to 100"), else zod's expected type.
            `${issue.message.startsWith('Invalid input') ? `expected ${issue.expected}` : issue.message}, got ${describeValue(got)}`;
      break;
    case 'invalid_union': {
      // A union's own message says what was expected; zod's default says only "Invalid input".
      const expected = issue.message.startsWith('Invalid input')
        ? `expected ${[...new Set(issue.errors.flatMap((e) => e.map(expectedOf)))].join(' or ')}`
        : issue.message;
      message = expected.includes('(got ') ? expected : `${expected}, got ${describeValue(got)}`;
      break;
    }
    case 'too_small':
    case 'too_big': {
      // A schema's own message names the whole range ("must be from 1 to 100"); zod's default only the bound.
      if (!/^Too (small|big)/.test(issue.message)) {
        message = `${issue.message}, got ${describeValue(got)}`;
        break;
      }
      const small = issue.code === 'too_small';
      const bound = String(small ? issue.minimum : issue.maximum);
      const strict = issue.inclusive === false;
      const word = small ? (strict ? 'more than' : 'at least') : strict ? 'fewer than' : 'at most';
      if (issue.origin === 'array') message = `must have ${word} ${bound} item${bound === '1' ? '' : 's'}`;
      else if (issue.origin === 'string')
        message = `must be ${word} ${bound} characters long${typeof got === 'string' ? ` (got ${got.length})` : ''}`;
      else
        message = `must be ${small ? (strict ? 'more than' : 'at least') : strict ? 'less than' : 'at most'} ${bound}, got ${describeValue(got)}`;
      break;
    }
    case 'invalid_value':
      message = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(got)}`;
      break;
    default:
      message = redactText(issue.message, 400);
  }
  return `${where(offsetOf(doc, path, key))}: ${formatPath(path)}: ${message}`;
}

/**
 * A union's failure, as the failures of the one branch whose type fitted the value (a mapping given for
 * `store`, a list for `buckets`): they say which field inside is wrong. Other issues stay as they are.
 */
function unionBranchIssues(issue: z.core.$ZodIssue): z.core.$ZodIssue[] {
  if (issue.code !== 'invalid_union') return [issue];
  const rootTypeMiss = (errors: z.core.$ZodIssue[]) =>
    errors.length === 1 &&
    errors[0]!.path.length === 0 &&
    (errors[0]!.code === 'invalid_type' || errors[0]!.code === 'invalid_value');
  const fitting = issue.errors.filter((errors) => !rootTypeMiss(errors));
  if (fitting.length !== 1) return [issue];
  return fitting[0]!.flatMap((sub) => unionBranchIssues({ ...sub, path: [...issue.path, ...sub.path] }));
}

/** What a failed union branch wanted, in a word. */
function expectedOf(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type') return issue.expected;
  if (issue.code === 'invalid_value') return issue.values.map((v) => JSON.stringify(v)).join(' or ');
  return 'something else';
}

/** A value as a message shows it: its kind, and a short, redacted form of a scalar. */
function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'number' && !Number.isFinite(v))
    return Number.isNaN(v) ? 'the number .nan' : `the number ${v > 0 ? '' : '-'}.inf`;
  if (typeof v === 'string') return `string ${JSON.stringify(redactText(v, 100))}`;
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** The field names allowed where an unknown key was found, for the error message. */
function allowedKeys(path: readonly PropertyKey[], data: unknown): string[] | undefined {
  const schema = schemaAt(configSchema, path, data);
  const shape = (schema?._zod.def as { shape?: Record<string, unknown> } | undefined)?.shape;
  return shape ? Object.keys(shape) : undefined;
}

type AnySchema = z.core.$ZodType;

/** Walks the config schema along `path`, choosing union members by the data found there. */
function schemaAt(root: AnySchema, path: readonly PropertyKey[], data: unknown): AnySchema | undefined {
  let schema: AnySchema | undefined = root;
  for (let i = 0; i <= path.length && schema; i++) {
    schema = unwrap(schema, valueAt(data, path.slice(0, i)));
    if (i === path.length || !schema) break;
    const def = schema._zod.def as { type: string; shape?: Record<string, AnySchema>; element?: AnySchema };
    const key = path[i]!;
    if (def.type === 'object') schema = def.shape?.[String(key)];
    else if (def.type === 'array') schema = def.element;
    else return undefined;
  }
  return schema;
}

function unwrap(schema: AnySchema, value: unknown): AnySchema | undefined {
  for (let s: AnySchema | undefined = schema, n = 0; s && n < 20; n++) {
    const def = s._zod.def as { type: string; innerType?: AnySchema; in?: AnySchema; options?: AnySchema[] };
    if (def.innerType) s = def.innerType;
    else if (def.type === 'pipe') s = def.in;
    else if (def.type === 'union') {
      // The object member whose literal fields (e.g. kind) match the data, else the only object member.
      const objects = (def.options ?? [])
        .map((o) => unwrap(o, value))
        .filter((o) => o?._zod.def.type === 'object');
      s = objects.find((o) => matchesLiterals(o!, value)) ?? (objects.length === 1 ? objects[0] : undefined);
    } else return s;
  }
  return undefined;
}

function matchesLiterals(schema: AnySchema, value: unknown): boolean {
  const shape = (schema._zod.def as { shape?: Record<string, AnySchema> }).shape ?? {};
  return Object.entries(shape).every(([k, field]) => {
    const def = field._zod.def as { type: string; values?: unknown[] };
    if (def.type !== 'literal') return true;
    return def.values?.includes((value as Record<string, unknown> | undefined)?.[k]) ?? false;
  });
}
