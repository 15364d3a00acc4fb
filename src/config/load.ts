import { accessSync, constants, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isMap, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { parseDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import { probes } from '../probes/registry.js';
import { resolveOtlpConfig } from '../sinks/otlp/config.js';
import { allSchemes, transportKindOf } from '../transports/registry.js';
import type { MessagingConfig } from './messaging.js';
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

type PathKey = string | number;

/** Environment variables that override the default interval; the first one set wins. */
export const INTERVAL_ENV = ['COALMINE_CHECK_INTERVAL', 'CHECK_INTERVAL'] as const;

/** Reads and validates a config file. Throws ConfigError listing every problem with its file:line. */
export async function loadConfigFile(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new ConfigError(
      [code === 'ENOENT' ? `${file}: no such file` : `${file}: cannot read: ${(err as Error).message}`],
      { cause: err },
    );
  }
  return parseConfig(text, file, env);
}

export function parseConfig(text: string, file = 'config', env: NodeJS.ProcessEnv = {}): AgentConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const where = (offset: number | undefined) => {
    if (offset === undefined) return file;
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `${where(e.pos[0])}: YAML: ${firstLine(e.message)}`));
  }
  const data: unknown = doc.toJS() ?? {};
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => describeIssue(i, doc, where, data)));
  }
  const problems: string[] = [];
  const problem = (path: PathKey[], message: string) =>
    problems.push(`${where(offsetOf(doc, path))}: ${formatPath(path)}: ${message}`);
  const raw = parsed.data;

  let intervalMs = raw.interval ?? DEFAULT_INTERVAL_MS;
  for (const name of INTERVAL_ENV) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const ms = parseDuration(v);
    if (ms === undefined || ms <= 0) {
      problems.push(
        `environment variable ${name}: expected a duration like 15s or a number of seconds (got ${JSON.stringify(v)})`,
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
  const messaging = resolveMessaging(raw, problem);
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
    listen: parseListen(raw.listen ?? DEFAULT_LISTEN),
    metrics: { compat: raw.metrics.compat, buckets: globalBuckets },
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
 * Rules watch what this agent measures: a configured target, or a flow into one of its own coalminers.
 * Secrets named by `*Env` must be set in the environment the agent starts in.
 */
function checkAlerting(
  raw: RawConfig,
  problem: (path: PathKey[], message: string) => void,
  env: NodeJS.ProcessEnv,
): void {
  const alerting = raw.alerting!;
  const targets = raw.targets.map((t) => t.name);
  const coalminers = raw.coalminers.map((c) => c.name);
  const list = (names: string[], what: string) =>
    names.length ? ` (${what}: ${names.join(', ')})` : ` (this config has no ${what})`;
  alerting.rules.forEach((r, i) => {
    if (r.target !== undefined && !targets.includes(r.target))
      problem(['alerting', 'rules', i, 'target'], `no target named "${r.target}"${list(targets, 'targets')}`);
    if (r.flow !== undefined && !coalminers.includes(r.flow.coalminer))
      problem(
        ['alerting', 'rules', i, 'flow', 'coalminer'],
        `no coalminer named "${r.flow.coalminer}" in this agent${list(coalminers, 'coalminers')}: a flow rule is evaluated where its coalminer runs`,
      );
  });
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
): MessagingConfig {
  const transports = new Map<string, string>();
  raw.transports.forEach((t, i) => {
    if (transports.has(t.name)) problem(['transports', i, 'name'], `duplicate transport name "${t.name}"`);
    transports.set(t.name, t.url);
  });
  const resolve = (ref: string, path: PathKey[]): string => {
    if (transports.has(ref)) return ref;
    if (transportKindOf(ref)) {
      transports.set(ref, ref);
      return ref;
    }
    const known = [...raw.transports.map((t) => t.name)];
    problem(
      path,
      `no transport named "${ref}"${known.length ? ` (known: ${known.join(', ')})` : ''}, and not a transport URL (${allSchemes()
        .map((s) => `${s}://`)
        .join(', ')})`,
    );
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
  return {
    transports,
    canaries: raw.canaries.map((c, i) => ({
      ...c,
      transportName: resolve(c.transport, ['canaries', i, 'transport']),
    })),
    coalminers: raw.coalminers.map((c, i) => ({
      ...c,
      transportName: resolve(c.transport, ['coalminers', i, 'transport']),
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
  return s.split('\n')[0] ?? s;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else out += out === '' ? String(k) : `.${String(k)}`;
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
      const names = issue.keys.map((k) => `"${k}"`).join(', ');
      message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${names}${allowed ? ` (allowed: ${allowed.join(', ')})` : ''}`;
      break;
    }
    case 'invalid_type':
      message =
        got === undefined
          ? `required ${issue.expected} is missing`
          : `expected ${issue.expected}, got ${describeValue(got)}`;
      break;
    case 'invalid_union':
      message = issue.message;
      break;
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const bound = String(small ? issue.minimum : issue.maximum);
      const strict = issue.inclusive === false;
      const word = small ? (strict ? 'more than' : 'at least') : strict ? 'fewer than' : 'at most';
      if (issue.origin === 'array') message = `must have ${word} ${bound} item${bound === '1' ? '' : 's'}`;
      else if (issue.origin === 'string') message = `must be ${word} ${bound} characters long`;
      else
        message = `must be ${small ? (strict ? 'more than' : 'at least') : strict ? 'less than' : 'at most'} ${bound}, got ${describeValue(got)}`;
      break;
    }
    case 'invalid_value':
      message = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(got)}`;
      break;
    default:
      message = issue.message;
  }
  return `${where(offsetOf(doc, path, key))}: ${formatPath(path)}: ${message}`;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
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
