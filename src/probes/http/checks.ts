import { clipText } from '../../core/log.js';
import type { ProbeError } from '../../core/types.js';
import { boundedTest, RegexTimeLimitError } from '../bounded-regex.js';
import {
  compileRegex,
  normalizeVersion,
  type HttpOptions,
  type HeaderMatch,
  type HttpVersion,
  type JsonCondition,
} from './options.js';

const versionLabel = (v: HttpVersion) => `HTTP/${v}`;

/** Status first, then version, as blackbox_exporter orders them. Undefined means the response passes. */
export function checkStatusAndVersion(
  status: number,
  version: HttpVersion,
  opts: Pick<HttpOptions, 'validStatusCodes' | 'validHttpVersions'>,
  note = '',
): ProbeError | undefined {
  const statusOk =
    opts.validStatusCodes.length === 0
      ? status >= 200 && status < 300
      : opts.validStatusCodes.includes(status);
  if (!statusOk) {
    const expected =
      opts.validStatusCodes.length === 0
        ? '2xx'
        : opts.validStatusCodes.length === 1
          ? String(opts.validStatusCodes[0])
          : `one of ${opts.validStatusCodes.join(', ')}`;
    return { code: 'http_status', message: `got status ${status}, expected ${expected}${note}` };
  }
  const valid = [...new Set(opts.validHttpVersions.map(normalizeVersion))];
  if (valid.length > 0 && !valid.includes(version)) {
    return {
      code: 'http_version',
      message: `got ${versionLabel(version)}, expected ${valid.map(versionLabel).join(' or ')}`,
    };
  }
  return undefined;
}

export function needsBody(opts: HttpOptions): boolean {
  return (
    opts.failIfBodyMatchesRegexp.length > 0 ||
    opts.failIfBodyNotMatchesRegexp.length > 0 ||
    opts.jsonConditions.length > 0
  );
}

/** Whether `pattern` matches `text`, within the regex time limit (see bounded-regex.ts). */
function matches(pattern: string, text: string): boolean {
  return boundedTest(compileRegex(pattern), text, pattern);
}

/** The values of header `name` (any case), one for each line it came on, in order. */
export function headerValues(rawHeaders: readonly string[], name: string): string[] {
  const want = name.toLowerCase();
  const values: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() === want) values.push(rawHeaders[i + 1] as string);
  }
  return values;
}

/**
 * failIfHeaderMatchesRegexp, then failIfHeaderNotMatchesRegexp, as blackbox_exporter judges them: a
 * missing header fails either check unless allowMissing; the first fails when any value matches, the
 * second when none does.
 */
export function checkHeaders(rawHeaders: readonly string[], opts: HttpOptions): ProbeError | undefined {
  try {
    return checkHeadersOrThrow(rawHeaders, opts);
  } catch (err) {
    if (err instanceof RegexTimeLimitError) return { code: 'validation', message: err.message };
    throw err;
  }
}

function checkHeadersOrThrow(rawHeaders: readonly string[], opts: HttpOptions): ProbeError | undefined {
  const missing = (check: string, spec: HeaderMatch): ProbeError => ({
    code: 'validation',
    message: `header ${spec.header} is missing (${check} /${spec.regexp}/; set allowMissing to pass without it)`,
  });
  for (const spec of opts.failIfHeaderMatchesRegexp) {
    const values = headerValues(rawHeaders, spec.header);
    if (values.length === 0) {
      if (spec.allowMissing) continue;
      return missing('failIfHeaderMatchesRegexp', spec);
    }
    const hit = values.find((v) => matches(spec.regexp, v));
    if (hit !== undefined) {
      return {
        code: 'validation',
        message: `header ${spec.header} value ${JSON.stringify(clipText(hit, 200))} matches failIfHeaderMatchesRegexp /${spec.regexp}/`,
      };
    }
  }
  for (const spec of opts.failIfHeaderNotMatchesRegexp) {
    const values = headerValues(rawHeaders, spec.header);
    if (values.length === 0) {
      if (spec.allowMissing) continue;
      return missing('failIfHeaderNotMatchesRegexp', spec);
    }
    if (!values.some((v) => matches(spec.regexp, v))) {
      const shownValues = values.slice(0, 5).map((v) => JSON.stringify(clipText(v, 200)));
      const more = values.length > 5 ? ` and ${values.length - 5} more` : '';
      return {
        code: 'validation',
        message: `no value of header ${spec.header} (${shownValues.join(', ')}${more}) matches failIfHeaderNotMatchesRegexp /${spec.regexp}/`,
      };
    }
  }
  return undefined;
}

/** Body regexes, then JSON conditions; the message names the check that failed. */
export function checkBody(body: string, opts: HttpOptions): ProbeError | undefined {
  try {
    return checkBodyOrThrow(body, opts);
  } catch (err) {
    if (err instanceof RegexTimeLimitError) return { code: 'validation', message: err.message };
    throw err;
  }
}

function checkBodyOrThrow(body: string, opts: HttpOptions): ProbeError | undefined {
  for (const pattern of opts.failIfBodyMatchesRegexp) {
    if (matches(pattern, body)) {
      return { code: 'validation', message: `body matches failIfBodyMatchesRegexp /${pattern}/` };
    }
  }
  for (const pattern of opts.failIfBodyNotMatchesRegexp) {
    if (!matches(pattern, body)) {
      return { code: 'validation', message: `body does not match failIfBodyNotMatchesRegexp /${pattern}/` };
    }
  }
  if (opts.jsonConditions.length === 0) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    return { code: 'validation', message: `jsonConditions: body is not JSON (${(err as Error).message})` };
  }
  for (const cond of opts.jsonConditions) {
    const problem = checkJsonCondition(doc, cond);
    if (problem !== undefined) return { code: 'validation', message: `jsonConditions: ${problem}` };
  }
  return undefined;
}

const MISSING = Symbol('missing');

/** Follows a dotted path (`a.b.0.c`); array elements are addressed by index. */
export function jsonAt(doc: unknown, path: string): unknown {
  let node: unknown = doc;
  for (const key of path.split('.')) {
    if (Array.isArray(node)) {
      if (!/^\d+$/.test(key) || Number(key) >= node.length) return MISSING;
      node = node[Number(key)];
    } else if (node !== null && typeof node === 'object' && Object.hasOwn(node, key)) {
      node = (node as Record<string, unknown>)[key];
    } else {
      return MISSING;
    }
  }
  return node;
}

/** A value from the body, as a message shows it: the start of its JSON (a field can hold megabytes). */
function shown(value: unknown): string {
  return clipText(JSON.stringify(value) ?? String(value), 200);
}

function checkJsonCondition(doc: unknown, cond: JsonCondition): string | undefined {
  const value = jsonAt(doc, cond.path);
  if (value === MISSING) return `field "${cond.path}" is missing`;
  if (cond.equals !== undefined && value !== cond.equals) {
    return `field "${cond.path}" is ${shown(value)}, expected ${JSON.stringify(cond.equals)}`;
  }
  if (cond.matches !== undefined) {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    if (!matches(cond.matches, text)) {
      return `field "${cond.path}" is ${shown(value)}, which does not match /${cond.matches}/`;
    }
  }
  return undefined;
}
