// Seeded random configs through the config loader: mutations of a valid config (wrong types, huge,
// negative, NaN and infinite numbers, long strings, deep nesting, aliases, odd keys, random bytes). Each
// one must load, with every number within its documented range, or fail with a ConfigError whose every
// line is short, says where, and carries no stack trace; never another exception, never a hang.
// Replay a failure with FUZZ_SEED=<seed printed in the test name>.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Document, parse } from 'yaml';
import { loadConfigFile, parseConfig } from '../../src/config/load.js';
import type { AgentConfig } from '../../src/config/schema.js';
import { ConfigError } from '../../src/core/errors.js';
import { prng, type Prng } from '../support/prng.js';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const FUZZ_MS = Number(process.env.FUZZ_MS ?? 10_000);
/** One case may take this long (the largest are a few MB); a hang fails the test with its case. */
const CASE_MS = 3000;

const bin = join(import.meta.dirname, '../../bin/coalmine.js');
const dir = mkdtempSync(join(tmpdir(), 'coalmine-config-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const valid = parse(
  readFileSync(join(import.meta.dirname, '../../src/config/testdata/valid.yaml'), 'utf8'),
) as Record<string, unknown>;

/** valid.yaml with every other section filled in, so mutations reach every field. */
const BASE = {
  ...valid,
  transports: [{ name: 'bus', url: 'redis://127.0.0.1:6379' }],
  canaries: [{ name: 'c1', transport: 'bus', rate: '10/s', size: 64, lease: 30, coalminers: ['eu'] }],
  coalminers: [{ name: 'eu', transport: 'bus', register: ['c1'], lossTimeout: 5, reorderWindow: 1000 }],
  store: { url: 'sqlite:./data/fuzz.db', retention: { raw: '7d', '1m': '90d', '1h': '2y' } },
  otlp: { endpoint: 'http://127.0.0.1:4318', interval: '60s', timeout: '10s', maxSeries: 2000 },
  alerting: {
    rules: [
      { name: 'web-down', target: 'web', condition: { probeFailing: {} }, for: '1m', evaluateEvery: '15s' },
      { name: 'loss', flow: { canary: 'c1', coalminer: 'eu' }, condition: { lossRatio: { above: 0.01 } } },
    ],
    notifiers: [{ name: 'am', alertmanager: { url: 'http://127.0.0.1:9093' }, timeout: '10s' }],
  },
};

type Json = unknown;
type Path = (string | number)[];

/** Every path to a value in `v`. */
function pathsOf(v: Json, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => pathsOf(x, [...at, i], out));
  else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) pathsOf(x, [...at, k], out);
  return out;
}

function setAt(root: Json, path: Path, value: Json): Json {
  if (path.length === 0) return value;
  let node = root as Record<string | number, Json>;
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, Json>;
  // An own property even for "__proto__", as a parsed YAML key is.
  Object.defineProperty(node, path.at(-1)!, { value, enumerable: true, writable: true, configurable: true });
  return root;
}

function deleteAt(root: Json, path: Path): void {
  if (path.length === 0) return;
  let node = root as Record<string | number, Json>;
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, Json>;
  const last = path.at(-1)!;
  if (Array.isArray(node)) node.splice(Number(last), 1);
  else delete node[last];
}

const ODD_KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', '', ' ', 'k'.repeat(2000), 'é'];
const DURATIONS = ['1us', '0', '0s', '-5s', '1e308', '999999999999h', '1.5', '24h', '25h', '100ms', '99ms'];
const SCALAR_STRINGS = [
  '',
  ' ',
  '.inf',
  'null',
  '1/s',
  '10/x',
  '1e9/s',
  `1${' '.repeat(5000)}x`,
  `ftp://${'a'.repeat(15_000)}`,
  'http://user:s3cret@127.0.0.1:1/?token=t0k',
  'postgres://',
  'mysql://db/x',
  'sqlite:/proc/self/x.db',
  '/dev/null',
  '127.0.0.1:99999',
  '0.0.0.0:0',
  '(',
  '.*.*.*.*=x',
  '\u0000\u0001',
  '\ud800',
  '🙂'.repeat(100),
  '%00',
  '${HOME}',
];

function randomString(r: Prng): string {
  if (r.chance(0.3)) return r.pick(DURATIONS);
  if (r.chance(0.5)) return r.pick(SCALAR_STRINGS);
  const n = r.chance(0.1) ? r.int(200_000) : r.int(40);
  return Array.from({ length: n }, () =>
    String.fromCharCode(r.chance(0.9) ? 32 + r.int(95) : r.int(0xffff)),
  ).join('');
}

function randomNumber(r: Prng): number {
  return r.pick([
    0,
    -0,
    -1,
    0.5,
    1,
    1.5,
    59,
    65_536,
    2 ** 31,
    2 ** 53 + 1,
    1e11,
    1e308,
    -1e308,
    5e-324,
    Number.NaN,
    Infinity,
    -Infinity,
    r.next() * 10 ** r.int(20),
    -r.int(1e6),
  ]);
}

function deep(r: Prng, levels: number): Json {
  let v: Json = randomScalar(r);
  for (let i = 0; i < levels; i++) v = r.chance(0.5) ? [v] : { [r.pick(['a', 'targets', 'kind'])]: v };
  return v;
}

function randomScalar(r: Prng): Json {
  switch (r.int(5)) {
    case 0:
      return randomNumber(r);
    case 1:
      return r.chance(0.5);
    case 2:
      return null;
    default:
      return randomString(r);
  }
}

function randomValue(r: Prng, budget = 3): Json {
  switch (r.int(budget > 0 ? 7 : 3)) {
    case 0:
      return randomNumber(r);
    case 1:
    case 2:
      return randomScalar(r);
    case 3:
      return Array.from({ length: r.int(4) }, () => randomValue(r, budget - 1));
    case 4:
      return Object.fromEntries(
        Array.from({ length: r.int(4) }, () => [
          r.chance(0.3) ? r.pick(ODD_KEYS) : randomString(r).slice(0, 30),
          randomValue(r, budget - 1),
        ]),
      );
    case 5:
      return deep(r, r.pick([10, 63, 64, 65, 200, 2000]));
    default:
      return r.chance(0.5) ? Array.from({ length: r.int(2000) }, (_, i) => i) : randomString(r);
  }
}

/** A mutated copy of BASE, as YAML text: values replaced, keys removed or added, values shared (aliases). */
function mutateTree(r: Prng): string {
  const root = structuredClone(BASE) as Json;
  for (let n = 1 + r.int(4); n > 0; n--) {
    const paths = pathsOf(root);
    const path = r.pick(paths);
    const op = r.int(10);
    if (op < 6) setAt(root, path, randomValue(r));
    else if (op < 7) deleteAt(root, path);
    else if (op < 8) setAt(root, [...path.slice(0, -1), r.pick(ODD_KEYS)], randomValue(r));
    else if (n === 1) {
      // The same object in two places: the YAML has an anchor and an alias. Last, so no later change
      // inside the shared object can make a cycle.
      const other = r.pick(paths);
      let v = root as Record<string | number, Json>;
      for (const k of other) v = (v?.[k] ?? null) as Record<string | number, Json>;
      if (v !== null && typeof v === 'object' && !other.every((k, i) => path[i] === k)) setAt(root, path, v);
    }
  }
  try {
    return new Document(root).toString({ lineWidth: 0 });
  } catch {
    // Too deep for the YAML writer's recursion: JSON is YAML too.
    try {
      return JSON.stringify(root) ?? '';
    } catch {
      return `a: ${'['.repeat(3000)}`;
    }
  }
}

const laughs = (levels: number) =>
  [
    'l0: &l0 [x, x, x, x, x, x, x, x, x, x]',
    ...Array.from(
      { length: levels },
      (_, i) => `l${i + 1}: &l${i + 1} [${Array(10).fill(`*l${i}`).join(', ')}]`,
    ),
  ].join('\n');

const SNIPPETS = [
  '[',
  ']',
  '{',
  ': ',
  '- ',
  '&a ',
  '*a',
  '*nope',
  '!!binary AAAA',
  '!!timestamp 2001-12-14',
  '!!set {a, b}',
  '!!js/function "f() {}"',
  '%YAML 1.1\n---\n',
  '<<: {a: 1}',
  '---\n',
  '...\n',
  '\t',
  '"\\x00"',
  '? ',
  '|\n',
  '#',
];

/** A text-level mutation: snippets, cuts, duplicated lines, deep brackets, alias bombs. */
function mutateText(r: Prng, text: string): string {
  for (let n = 1 + r.int(3); n > 0; n--) {
    const at = r.int(text.length + 1);
    const op = r.int(8);
    if (op < 3) text = text.slice(0, at) + r.pick(SNIPPETS) + text.slice(at);
    else if (op < 4) text = text.slice(0, at) + text.slice(at + r.int(50));
    else if (op < 5) {
      const lines = text.split('\n');
      const i = r.int(lines.length);
      lines.splice(i, 0, lines[i] ?? '');
      text = lines.join('\n');
    } else if (op < 6) text = `${text}\nz: ${'['.repeat(r.pick([70, 900, 5000]))}`;
    else if (op < 7) text = `${laughs(r.pick([2, 5, 9]))}\n${text}`;
    else text = text.slice(0, at) + randomString(r) + text.slice(at);
  }
  return text;
}

interface Case {
  what: string;
  text?: string;
  bytes?: Buffer;
}

function makeCase(r: Prng, i: number): Case {
  const kind = r.int(10);
  if (kind < 5) return { what: `${i}: tree`, text: mutateTree(r) };
  if (kind < 8) return { what: `${i}: text`, text: mutateText(r, mutateTree(r)) };
  if (kind < 9) return { what: `${i}: random bytes`, bytes: r.bytes(r.int(4096)) };
  const text = Buffer.from(mutateTree(r));
  const bytes = Buffer.from(text);
  for (let n = 1 + r.int(5); n > 0; n--) bytes[r.int(bytes.length)] = r.int(256);
  return { what: `${i}: flipped bytes`, bytes };
}

/** What an accepted config must hold: every number within the range its schema documents. */
function expectInRange(cfg: AgentConfig): void {
  const within = (v: number, min: number, max: number, what: string) =>
    expect(v >= min && v <= max, `${what} = ${v}, outside ${min}..${max}`).toBe(true);
  within(cfg.intervalMs, 100, 86_400_000, 'intervalMs');
  within(cfg.listen.port, 0, 65_535, 'listen port');
  for (const t of cfg.targets) {
    within(t.intervalMs, 100, 86_400_000, `${t.name} intervalMs`);
    within(t.timeoutMs, 10, t.intervalMs - 1e-9, `${t.name} timeoutMs`);
  }
  const b = cfg.metrics.buckets;
  expect(b.length).toBeGreaterThan(0);
  expect(b.length).toBeLessThanOrEqual(100);
  b.forEach((x, i) => {
    within(x, 1e-9, 86_400, 'bucket');
    if (i > 0) expect(x).toBeGreaterThan(b[i - 1]!);
  });
  for (const c of cfg.messaging.coalminers) {
    within(c.reorderWindow, 1, 1_000_000, 'reorderWindow');
    expect(Number.isInteger(c.reorderWindow)).toBe(true);
    within(c.lossTimeout, 0.01, 3600, 'lossTimeout');
  }
  for (const c of cfg.messaging.canaries) {
    within(c.rate, 1 / 60, 1_000_000, 'rate');
    within(c.size, 0, 1_048_576, 'size');
    if (c.lease !== undefined) within(c.lease, 1, 86_400, 'lease');
  }
  if (cfg.otlp) {
    within(cfg.otlp.intervalMs, 100, 86_400_000, 'otlp intervalMs');
    within(cfg.otlp.timeoutMs, 10, cfg.otlp.intervalMs - 1e-9, 'otlp timeoutMs');
  }
  for (const rule of cfg.alerting?.rules ?? []) {
    within(rule.evaluateEveryMs, 100, 86_400_000, 'evaluateEveryMs');
    within(rule.forMs, 0, 7 * 86_400_000, 'forMs');
    if (rule.repeatIntervalMs !== undefined) within(rule.repeatIntervalMs, 1000, 7 * 86_400_000, 'repeat');
  }
}

/** Loads one case; returns 'loaded', or the ConfigError's problems. Anything else is thrown. */
async function load(c: Case): Promise<'loaded' | readonly string[]> {
  try {
    let cfg: AgentConfig;
    if (c.bytes) {
      const file = join(dir, 'case.yaml');
      writeFileSync(file, c.bytes);
      cfg = await loadConfigFile(file, {});
    } else {
      cfg = parseConfig(c.text!, 'fuzz.yaml', {});
    }
    expectInRange(cfg);
    return 'loaded';
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

const STACK_FRAME = /^\s+at .+[(:]\d+/m;

describe(`config loader fuzz (FUZZ_SEED=${SEED})`, () => {
  it('accepts valid.yaml with every section filled in', () => {
    expectInRange(parseConfig(new Document(BASE).toString(), 'base.yaml', {}));
  });

  it(
    'loads every mutation, or refuses it with a ConfigError that says where and what',
    { timeout: FUZZ_MS + 30_000 },
    async () => {
      const r = prng(SEED);
      const deadline = performance.now() + FUZZ_MS;
      let loaded = 0;
      let refused = 0;
      for (let i = 0; performance.now() < deadline; i++) {
        const c = makeCase(r, i);
        const started = performance.now();
        let outcome: Awaited<ReturnType<typeof load>>;
        try {
          outcome = await load(c);
        } catch (err) {
          const shown = (c.text ?? c.bytes?.toString('latin1') ?? '').slice(0, 300);
          throw new Error(`case ${c.what} (FUZZ_SEED=${SEED}) threw ${String(err)}\n${shown}`, {
            cause: err,
          });
        }
        const ms = performance.now() - started;
        expect(ms, `case ${c.what} (FUZZ_SEED=${SEED}) took ${ms.toFixed(0)} ms`).toBeLessThan(CASE_MS);
        if (outcome === 'loaded') {
          loaded++;
          continue;
        }
        refused++;
        expect(outcome.length, c.what).toBeGreaterThan(0);
        for (const p of outcome) {
          expect(p.length, `${c.what}: ${p.slice(0, 200)}`).toBeLessThan(2000);
          expect(p, c.what).toMatch(/^(fuzz\.yaml|.*case\.yaml|environment variable)/);
          expect(p, c.what).not.toMatch(STACK_FRAME);
        }
      }
      // Both outcomes are exercised: most mutations break the config, some are harmless.
      expect(refused).toBeGreaterThan(50);
      expect(loaded).toBeGreaterThan(0);
    },
  );

  it('the built binary: config check exits 0 or 2 with a plain message, for a handful of cases', async () => {
    const r = prng(SEED + 1);
    const cases = Array.from({ length: 8 }, (_, i) => makeCase(r, i));
    const results = await Promise.all(
      cases.map((c, i) => {
        const file = join(dir, `bin-${i}.yaml`);
        writeFileSync(file, c.bytes ?? c.text!);
        return new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, [bin, 'config', 'check', file], {
            env: { ...process.env, COALMINE_API_TOKEN: 'fuzz-token-of-at-least-32-characters!!' },
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          let stderr = '';
          child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
          child.once('exit', (code) => {
            clearTimeout(timer);
            resolve({ code, stderr });
          });
        });
      }),
    );
    results.forEach((res, i) => {
      expect([0, 2], `${cases[i]!.what}: ${res.stderr.slice(0, 500)}`).toContain(res.code);
      expect(res.stderr).not.toMatch(STACK_FRAME);
      if (res.code === 2) expect(res.stderr).toMatch(/^error: /);
    });
  });
});
