import { Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { formatDuration, parseDuration } from '../core/duration.js';
import { UsageError } from '../core/errors.js';
import { formatPath } from '../config/load.js';
import { probes, type ProbeKind } from '../probes/registry.js';

/**
 * Parses a duration flag to milliseconds. A bare number is refused: config files read one as seconds,
 * and `-t 1000` meant as milliseconds would wait 17 minutes, so the command line asks for the unit.
 */
export function durationOption(flag: string) {
  return (text: string): number => {
    if (/^\s*\d+(\.\d+)?\s*$/.test(text))
      throw new UsageError(`${flag}: "${text}" needs a unit, e.g. ${text.trim()}ms or ${text.trim()}s`);
    const ms = parseDuration(text);
    if (ms === undefined || ms <= 0)
      throw new UsageError(`${flag}: expected a duration like 5s or 250ms (got "${text}")`);
    return ms;
  };
}

/** Said in --help beside a duration flag: what durationOption accepts. */
export const DURATION_UNITS = '(with a unit: 250ms, 10s, 1m30s)';

/** A duration flag whose --help shows its default as a duration ("default: 10s"), not as milliseconds. */
export function durationFlag(flags: string, description: string, defaultMs?: number): Option {
  const long = /--[a-z][\w-]*/.exec(flags)?.[0] ?? flags;
  const option = new Option(flags, description).argParser(durationOption(long));
  return defaultMs === undefined ? option : option.default(defaultMs, formatDuration(defaultMs));
}

export function positiveInt(flag: string) {
  return (text: string): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1)
      throw new UsageError(`${flag}: expected a whole number of at least 1 (got "${text}")`);
    return n;
  };
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** The schema inside defaults, optionals and pipes, or undefined for one this cannot see into. */
function unwrap(schema: z.ZodType | undefined): z.ZodType | undefined {
  let s = schema;
  for (let i = 0; s?._zod && i < 10; i++) {
    const def = s._zod.def as { type: string; innerType?: z.ZodType; in?: z.ZodType };
    if (def.innerType) s = def.innerType;
    else if (def.type === 'pipe' && def.in) s = def.in;
    else return s;
  }
  return s;
}

/** Whether the option at `keys` (e.g. ["tls", "caFile"]) is a list in the kind's schema. */
function isListOption(kind: ProbeKind, keys: readonly string[]): boolean {
  let schema: z.ZodType | undefined = probes[kind].options;
  for (const key of keys) {
    let s = unwrap(schema);
    // tls is `true` or an object of settings: look into the object.
    if (s?._zod.def.type === 'union') {
      const options = (s._zod.def as unknown as { options: z.ZodType[] }).options;
      s = options.map(unwrap).find((o) => o?._zod.def.type === 'object');
    }
    if (s?._zod.def.type !== 'object') return false;
    const shape = (s as unknown as { shape: Record<string, z.ZodType> }).shape;
    schema = Object.hasOwn(shape, key) ? shape[key] : undefined;
  }
  return unwrap(schema)?._zod.def.type === 'array';
}

/**
 * `-o key=value` pairs (dotted keys make nested objects; values are YAML scalars) validated by the kind.
 * A list option may be given again to add to it (`-o validStatusCodes=200 -o validStatusCodes=204`, or
 * `[200,204]` at once); any other option given twice is an error rather than the last one winning.
 */
export function kindOptions(kind: ProbeKind, pairs: readonly string[]): Record<string, unknown> {
  // Null-prototype objects: `-o __proto__.x=1` is then an unknown option, not a change to every object.
  const obj: Record<string, unknown> = Object.create(null);
  const given = new Map<string, string>();
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`-o ${pair}: expected key=value, e.g. -o method=POST`);
    const name = pair.slice(0, eq);
    const keys = name.split('.');
    const list = isListOption(kind, keys);
    const earlier = given.get(name);
    if (earlier !== undefined && !list) {
      throw new UsageError(
        `-o ${name}: given twice (-o ${earlier} and -o ${pair}); it takes one value (only list options add up)`,
      );
    }
    given.set(name, pair);
    let value: unknown;
    try {
      value = parseYaml(pair.slice(eq + 1));
    } catch {
      value = pair.slice(eq + 1);
    }
    let cur = obj;
    keys.slice(0, -1).forEach((k) => {
      if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = Object.create(null);
      cur = cur[k] as Record<string, unknown>;
    });
    const last = keys.at(-1)!;
    value ??= '';
    if (list) {
      const items = Array.isArray(value) ? value : [value];
      cur[last] = [...((cur[last] as unknown[] | undefined) ?? []), ...items];
    } else {
      cur[last] = value;
    }
  }
  const parsed = probes[kind].options.safeParse(obj);
  if (!parsed.success) {
    throw new UsageError(
      parsed.error.issues
        .map(
          (i) =>
            `-o ${formatPath(i.path)}: ${i.code === 'unrecognized_keys' ? `unknown option ${i.keys.join(', ')} for ${kind} (see coalmine probe --help)` : i.message}`,
        )
        .join('\n'),
    );
  }
  return parsed.data as Record<string, unknown>;
}

/** Lines for --help: each kind with its target form and options. */
export function kindsHelp(): string {
  const lines: string[] = ['', 'Kinds, their targets and options (-o NAME=VALUE):'];
  for (const [kind, def] of Object.entries(probes)) {
    lines.push(`  ${kind.padEnd(5)} ${def.summary}`, `        target: ${def.targetForm}`);
    for (const [name, schema] of Object.entries(def.options.shape)) {
      const desc = (schema as { description?: string }).description ?? '';
      lines.push(`        -o ${name.padEnd(22)} ${desc}`);
    }
  }
  return lines.join('\n');
}
