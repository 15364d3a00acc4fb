import type { ReferenceProblem } from './references.js';

/**
 * Every problem with the options of the transport URLs a config names: each `transports[].url`, and a
 * canary's or coalminer's `transport` when it is a URL rather than a name. Read from the data as
 * written, like the reference problems, so they are listed even when the schema refuses the file.
 * A URL whose scheme no transport takes is skipped: the schema and the references say that already.
 * `check` is the registry's (loadTransportUrlChecker), which run time parses with too.
 */
export function transportUrlProblems(
  data: unknown,
  check: (url: string) => string[],
  isTransportUrl: (ref: string) => boolean,
): ReferenceProblem[] {
  const out: ReferenceProblem[] = [];
  const root = asRecord(data);
  const at = (path: (string | number)[], url: unknown) => {
    if (typeof url !== 'string' || !isTransportUrl(url)) return;
    for (const message of check(url)) out.push({ path, message });
  };
  list(root?.transports).forEach((t, i) => at(['transports', i, 'url'], t?.url));
  const names = new Set(list(root?.transports).map((t) => t?.name));
  for (const section of ['canaries', 'coalminers'] as const)
    list(root?.[section]).forEach((e, i) => {
      if (!names.has(e?.transport)) at([section, i, 'transport'], e?.transport);
    });
  return out;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

function list(v: unknown): (Record<string, unknown> | undefined)[] {
  return Array.isArray(v) ? v.map(asRecord) : [];
}
