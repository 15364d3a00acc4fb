import { allSchemes, transportKindOf } from '../transports/registry.js';

type PathKey = string | number;

/** One reference to something the config does not define. */
export interface ReferenceProblem {
  path: PathKey[];
  message: string;
}

/**
 * Every name one part of the config uses for another that does not exist: a rule's target, a flow
 * rule's coalminer, a rule's notifiers, a canary's or coalminer's transport. It reads the file's data
 * as it came, not the schema's output, so that these problems are listed beside the schema's own even
 * when other parts of the file are malformed; what is not a string where a name belongs is skipped (the
 * schema says what is wrong with it).
 */
export function referenceProblems(data: unknown): ReferenceProblem[] {
  const out: ReferenceProblem[] = [];
  const problem = (path: PathKey[], message: string) => out.push({ path, message });
  const root = asRecord(data);

  const transportNames = namesIn(root?.transports);
  const checkTransport = (list: 'canaries' | 'coalminers') =>
    entries(root?.[list]).forEach((e, i) => {
      const ref = e.transport;
      if (typeof ref !== 'string' || ref === '' || transportNames.includes(ref) || transportKindOf(ref))
        return;
      problem(
        [list, i, 'transport'],
        `no transport named "${ref}"${transportNames.length ? ` (known: ${transportNames.join(', ')})` : ''}, and not a transport URL (${allSchemes()
          .map((s) => `${s}://`)
          .join(', ')})`,
      );
    });
  checkTransport('canaries');
  checkTransport('coalminers');

  const alerting = asRecord(root?.alerting);
  if (!alerting) return out;
  const targets = namesIn(root?.targets);
  const coalminers = namesIn(root?.coalminers);
  const notifiers = namesIn(alerting.notifiers);
  const list = (names: string[], what: string) =>
    names.length ? ` (${what}: ${names.join(', ')})` : ` (this config has no ${what})`;
  entries(alerting.rules).forEach((r, i) => {
    if (typeof r.target === 'string' && r.target !== '' && !targets.includes(r.target))
      problem(['alerting', 'rules', i, 'target'], `no target named "${r.target}"${list(targets, 'targets')}`);
    const coalminer = asRecord(r.flow)?.coalminer;
    if (typeof coalminer === 'string' && coalminer !== '' && !coalminers.includes(coalminer))
      problem(
        ['alerting', 'rules', i, 'flow', 'coalminer'],
        `no coalminer named "${coalminer}" in this agent${list(coalminers, 'coalminers')}: a flow rule is evaluated where its coalminer runs`,
      );
    if (Array.isArray(r.notify))
      r.notify.forEach((name: unknown, j) => {
        if (typeof name === 'string' && name !== '' && !notifiers.includes(name))
          problem(
            ['alerting', 'rules', i, 'notify', j],
            `no notifier named ${JSON.stringify(name)}${notifiers.length ? ` (notifiers: ${notifiers.join(', ')})` : ' (alerting.notifiers is empty)'}`,
          );
      });
  });
  return out;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

/** The mappings of a list, with their indexes kept (other items count as empty mappings). */
function entries(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v) ? v.map((e) => asRecord(e) ?? {}) : [];
}

/** The string `name`s of a list's mappings, in order, each once. */
function namesIn(v: unknown): string[] {
  const names = entries(v)
    .map((e) => e.name)
    .filter((n): n is string => typeof n === 'string');
  return [...new Set(names)];
}
