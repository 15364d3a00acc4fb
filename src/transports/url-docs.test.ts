import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkTransportUrl, transportKindOf, transports } from './registry.js';

/** The README's "Transport URLs" section. */
function readmeSection(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = /^## Transport URLs\n([\s\S]*?)^## /m.exec(readme)?.[1];
  if (section === undefined) throw new Error('README.md has no "## Transport URLs" section');
  return section;
}

/** The section cut at its `###` headings: each heading with the text under it. */
function readmeSubsections(): { heading: string; body: string }[] {
  return readmeSection()
    .split(/^(?=### )/m)
    .filter((part) => part.startsWith('### '))
    .map((part) => ({ heading: part.slice(0, part.indexOf('\n')), body: part }));
}

/**
 * The options a scheme's checkUrl knows, as its own problem for an unknown option lists them
 * (url-options.ts: "unknown option X= for S:// (known: a, b)" or "(S:// takes no options)").
 */
async function knownOptions(scheme: string): Promise<string[]> {
  const problems = await checkTransportUrl(`${scheme}://127.0.0.1:1/?docsProbe=1`);
  const unknown = problems.find((p) => p.startsWith('unknown option docsProbe='));
  if (unknown === undefined)
    throw new Error(`${scheme}:// did not report an unknown option: ${problems.join('; ')}`);
  if (unknown.includes('takes no options')) return [];
  const list = /\(known: ([^)]*)\)$/.exec(unknown)?.[1];
  if (list === undefined) throw new Error(`cannot read the known options from: ${unknown}`);
  return list.split(', ');
}

const schemes = Object.values(transports).flatMap((t) => [...t.schemes]);

describe('README "Transport URLs"', () => {
  const subsections = readmeSubsections();

  it.each(schemes)('documents every option %s:// takes, under its own heading', async (scheme) => {
    const sub = subsections.find((s) => s.heading.includes(`\`${scheme}://`));
    expect(sub, `a "### ... \`${scheme}://\`" heading`).toBeDefined();
    const options = await knownOptions(scheme);
    const missing = options.filter((name) => !sub!.body.includes(`\`${name}=`));
    expect(missing, `options of ${scheme}:// not written as \`name=...\` under ${sub!.heading}`).toEqual([]);
  });

  it('reads the options checkUrl knows (so the test above cannot pass on an empty list)', async () => {
    expect(await knownOptions('memory')).toEqual([]);
    expect(await knownOptions('nats+jetstream')).toEqual(expect.arrayContaining(['stream', 'insecure']));
    expect(await knownOptions('nats')).not.toContain('stream');
  });

  it('names no scheme the registry does not have', () => {
    const known = new Set(schemes);
    const named = subsections.flatMap((s) =>
      [...s.heading.matchAll(/`([a-z][a-z0-9+.-]*):\/\//g)].map((m) => m[1]!),
    );
    expect(named.filter((s) => !known.has(s))).toEqual([]);
  });

  it('gives example URLs that config check accepts, at least one per kind', async () => {
    // Inline code outside the headings that is a whole URL with a real host (not `nats://USER@host`).
    const text = readmeSection()
      .split('\n')
      .filter((line) => !line.startsWith('#'))
      .join('\n');
    const examples = [...text.matchAll(/`([a-z][a-z0-9+.-]*:\/\/[a-z0-9][^`\s]*)`/g)].map((m) => m[1]!);
    const kinds = new Set(examples.map((url) => transportKindOf(url)));
    expect(Object.keys(transports).filter((k) => !kinds.has(k as keyof typeof transports))).toEqual([]);
    for (const url of examples) {
      // The files and variables an example names are the reader's, not this machine's.
      const problems = (await checkTransportUrl(url)).filter(
        (p) => !/: no such file$|: the environment variable \w+ is not set$/.test(p),
      );
      expect(problems, url).toEqual([]);
    }
  });
});
