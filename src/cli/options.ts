import { parse as parseYaml } from 'yaml';
import { parseDuration } from '../core/duration.js';
import { UsageError } from '../core/errors.js';
import { formatPath } from '../config/load.js';
import { probes, type ProbeKind } from '../probes/registry.js';

export function durationOption(flag: string) {
  return (text: string): number => {
    const ms = parseDuration(text);
    if (ms === undefined || ms <= 0)
      throw new UsageError(`${flag}: expected a duration like 5s or 250ms (got "${text}")`);
    return ms;
  };
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

/** `-o key=value` pairs (dotted keys make nested objects; values are YAML scalars) validated by the kind. */
export function kindOptions(kind: ProbeKind, pairs: readonly string[]): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`-o ${pair}: expected key=value, e.g. -o method=POST`);
    const keys = pair.slice(0, eq).split('.');
    let value: unknown;
    try {
      value = parseYaml(pair.slice(eq + 1));
    } catch {
      value = pair.slice(eq + 1);
    }
    let cur = obj;
    keys.slice(0, -1).forEach((k) => {
      if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
      cur = cur[k] as Record<string, unknown>;
    });
    cur[keys.at(-1)!] = value ?? '';
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
