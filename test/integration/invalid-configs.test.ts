import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type Io } from '../../src/cli/main.js';

/**
 * Issue 9: of 53 invalid configs, 20 gave no clear error (a stack trace, a hang, "Invalid input", or
 * nothing until run time). Every invalid config must end `config check` (and `coalmine run`) with exit
 * 2, a first line `error: ...` that says what to fix, no stack trace, and quickly.
 */

const bin = join(import.meta.dirname, '../../bin/coalmine.js');
const testdata = join(import.meta.dirname, '../../src/config/testdata');
const dir = mkdtempSync(join(tmpdir(), 'coalmine-invalid-'));

/** A stack trace's frame line, as Node prints them. */
const STACK_FRAME = /^\s+at .+[(:]\d+/m;

const laughs = [
  'a0: &a0 [x, x, x, x, x, x, x, x, x, x]',
  ...Array.from({ length: 8 }, (_, i) => `a${i + 1}: &a${i + 1} [${Array(10).fill(`*a${i}`).join(', ')}]`),
].join('\n');

/** Configs the testdata folder cannot hold (binary, huge, generated), with what the error must say. */
const TABLE: { what: string; text: string | Buffer; expect: string | RegExp }[] = [
  {
    what: 'binary bytes',
    text: Buffer.from(Array.from({ length: 2048 }, (_, i) => i % 256)),
    expect: 'not a YAML text file',
  },
  {
    what: 'invalid UTF-8 without NUL',
    text: Buffer.from([0x69, 0x3a, 0x20, 0xff, 0xfe, 0x0a]),
    expect: 'not a YAML text file',
  },
  { what: 'a NUL inside text', text: 'interval: 15s\n\u0000\n', expect: 'not a YAML text file' },
  {
    what: 'a file over 10 MiB',
    text: `# ${'x'.repeat(10 * 1024 * 1024 + 10)}\n`,
    expect: 'too large for a config file (at most 10 MiB)',
  },
  { what: 'a billion laughs', text: laughs, expect: 'aliases (*name) expand to too much data' },
  {
    what: 'flow nesting past the parser stack',
    text: `a: ${'['.repeat(5000)}${']'.repeat(5000)}`,
    expect: 'nested more than 64 levels deep',
  },
  {
    what: 'block nesting 100 deep',
    text: Array.from({ length: 100 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ' 1',
    expect: 'nested more than 64 levels deep',
  },
  {
    what: 'a 5 MB target',
    text: `targets:\n  - { name: t, kind: http, target: "ftp://${'a'.repeat(5_000_000)}" }\n`,
    expect: 'targets[0].target: must be at most 2048 characters long (got 5000006)',
  },
  {
    what: 'a 5 MB tcp target',
    text: `targets:\n  - { name: t, kind: tcp, target: "${'a:'.repeat(2_500_000)}" }\n`,
    expect: 'targets[0].target: must be at most 2048 characters long',
  },
  {
    what: 'a 1 MB unknown key',
    text: `? ${'k'.repeat(1_000_000)}\n: 1\n`,
    expect: /unknown field "k+…\(\d+ more characters\)/,
  },
  {
    what: 'a 1 MB interval',
    text: `interval: "${'1s'.repeat(500_000)}x"\n`,
    expect: 'interval: expected a duration like 15s, 500ms or 1m30s (got "1s1s',
  },
  {
    what: 'a rate with a million spaces',
    text: `canaries:\n  - { name: c, transport: "memory://x", rate: "1${' '.repeat(1_000_000)}x" }\n`,
    expect: 'canaries[0].rate: expected a rate from 1/m to 1000000/s',
  },
  {
    what: 'interval: 1us',
    text: 'interval: 1us\n',
    expect: 'interval: must be from 100ms to 24h (got "1us")',
  },
  {
    what: 'interval: 1e308',
    text: 'interval: 1e308\n',
    expect: 'interval: must be from 100ms to 24h (got 1e+308)',
  },
  {
    what: 'interval: -5',
    text: 'interval: -5\n',
    expect: 'interval: expected a duration like 15s, 500ms or 1m30s (got -5)',
  },
  {
    what: 'interval: [1, 2]',
    text: 'interval: [1, 2]\n',
    expect: 'interval: expected a duration like 15s, 500ms or 1m30s, got a list',
  },
  {
    what: 'interval: .inf',
    text: 'interval: .inf\n',
    expect: 'interval: expected a duration like 15s, 500ms or 1m30s, got the number .inf',
  },
  { what: 'interval: .nan', text: 'interval: .nan\n', expect: 'got the number .nan' },
  { what: 'timeout: 25h', text: 'timeout: 25h\n', expect: 'timeout: must be from 10ms to 24h (got "25h")' },
  {
    what: 'reorderWindow: 1e11',
    text: 'coalminers:\n  - { name: m, transport: "memory://x", register: [c], reorderWindow: 1e11 }\n',
    expect: 'coalminers[0].reorderWindow: must be from 1 to 1000000',
  },
  {
    what: 'reorderWindow: 1.5',
    text: 'coalminers:\n  - { name: m, transport: "memory://x", register: [c], reorderWindow: 1.5 }\n',
    expect: 'coalminers[0].reorderWindow: must be a whole number from 1 to 1000000',
  },
  {
    what: 'lossTimeout: .inf',
    text: 'coalminers:\n  - { name: m, transport: "memory://x", register: [c], lossTimeout: .inf }\n',
    expect: 'coalminers[0].lossTimeout: expected number, got the number .inf',
  },
  {
    what: 'lease: 1e308',
    text: 'canaries:\n  - { name: c, transport: "memory://x", lease: 1e308 }\n',
    expect: 'canaries[0].lease: must be from 1 to 86400 seconds',
  },
  {
    what: 'size: -1',
    text: 'canaries:\n  - { name: c, transport: "memory://x", size: -1 }\n',
    expect: 'canaries[0].size: must be at least 0',
  },
  {
    what: 'rate: 1e9',
    text: 'canaries:\n  - { name: c, transport: "memory://x", rate: 1e9 }\n',
    expect: 'canaries[0].rate: expected a rate from 1/m to 1000000/s',
  },
  {
    what: 'exponential buckets overflowing',
    text: 'metrics:\n  buckets: { exponential: { start: 1, factor: 1e300, count: 5 } }\n',
    expect: 'metrics.buckets.exponential.factor: must be at most 100',
  },
  {
    what: 'a bucket list of 1000',
    text: `metrics:\n  buckets: [${Array.from({ length: 1000 }, (_, i) => (i + 1) / 1000).join(', ')}]\n`,
    expect: 'metrics.buckets: must have at most 100 items',
  },
  {
    what: 'a bucket of 0',
    text: 'metrics:\n  buckets: [0, 1]\n',
    expect: 'metrics.buckets[0]: a bucket bound is from 1e-9 to 86400 seconds',
  },
  {
    what: 'maxRedirects: -1',
    text: 'targets:\n  - { name: w, kind: http, target: "http://127.0.0.1/", maxRedirects: -1 }\n',
    expect: 'targets[0].maxRedirects: must be from 0 to 100',
  },
  {
    what: 'icmp packets: 1e6',
    text: 'targets:\n  - { name: g, kind: icmp, target: 127.0.0.1, packets: 1000000 }\n',
    expect: 'targets[0].packets: must be at most 100',
  },
  {
    what: 'otlp maxSeries: 1e9',
    text: 'otlp:\n  endpoint: http://127.0.0.1:4318\n  maxSeries: 1e9\n',
    expect: 'otlp.maxSeries: must be at most 100000',
  },
  {
    what: 'evaluateEvery: 1e308',
    text: 'targets:\n  - { name: w, kind: tcp, target: "127.0.0.1:1" }\nalerting:\n  rules:\n    - { name: r, target: w, condition: { probeFailing: {} }, evaluateEvery: 1e308 }\n',
    expect: 'alerting.rules[0].evaluateEvery: must be from 100ms to 24h',
  },
  {
    what: 'a latency threshold of .inf',
    text: 'targets:\n  - { name: w, kind: tcp, target: "127.0.0.1:1" }\nalerting:\n  rules:\n    - { name: r, target: w, condition: { latency: { percentile: 99, above: .inf } } }\n',
    expect: 'alerting.rules[0].condition.latency.above: expected a number (seconds)',
  },
  {
    what: 'email port 70000',
    text: 'alerting:\n  notifiers:\n    - { name: m, email: { host: h, port: 70000, from: a@b.c, to: [d@e.f] } }\n',
    expect: 'alerting.notifiers[0].email.port: must be at most 65535',
  },
  {
    what: 'a store engine we lack',
    text: 'store: { url: "mysql://db/x" }\n',
    expect: 'store.url: unknown engine "mysql"',
  },
  {
    what: 'a store under /sys',
    text: 'store: { url: "/sys/kernel/coalmine.db" }\n',
    expect: 'store.url: "/sys/kernel/coalmine.db" is under /sys',
  },
  {
    what: 'a store url of spaces',
    text: 'store: { url: "   " }\n',
    expect: 'store.url: empty: use sqlite:PATH',
  },
  {
    what: 'retention: 0',
    text: 'store: { retention: { raw: 0 } }\n',
    expect: 'store.retention.raw: must be from 1h to 36500d (got 0)',
  },
  {
    what: 'listen port 99999',
    text: 'listen: "127.0.0.1:99999"\n',
    expect: 'listen: the port is 0 to 65535',
  },
  {
    what: 'listening beyond loopback without a token',
    text: 'listen: "0.0.0.0:9777"\n',
    expect: 'listen: refusing to listen on 0.0.0.0',
  },
  { what: 'the top level a list', text: '- a\n- b\n', expect: '(top level): expected object, got a list' },
];

/** Runs `coalmine ...` in this process. */
async function cli(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l), isTty: false };
  const started = performance.now();
  const code = await main(['node', 'coalmine', ...args], io, {});
  return { code, out, err, ms: performance.now() - started };
}

/** Runs the built binary; resolves with its exit code and output. */
function runBinary(args: string[], env: Record<string, string> = {}, timeoutMs = 20_000) {
  return new Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, [bin, ...args], {
      env: { ...process.env, COALMINE_API_TOKEN: '', COALMINE_LOG_FORMAT: 'json', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

function expectClearFailure(
  r: { code: number | null; err: string[]; ms: number },
  expected: string | RegExp,
) {
  const text = r.err.join('\n');
  expect(r.code, text).toBe(2);
  expect(r.err[0]).toMatch(/^error: /);
  if (typeof expected === 'string') expect(text).toContain(expected);
  else expect(text).toMatch(expected);
  expect(text).not.toMatch(STACK_FRAME);
  expect(text.length).toBeLessThan(20_000);
  expect(r.ms).toBeLessThan(10_000);
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('coalmine config check on invalid configs', () => {
  const files = readdirSync(testdata).filter((f) => f.startsWith('invalid-'));

  it('covers about fifty distinct invalid configs', () => {
    expect(files.length + TABLE.length).toBeGreaterThanOrEqual(50);
  });

  for (const file of files) {
    it(`${file}: exit 2 with its expected first message`, async () => {
      const text = readFileSync(join(testdata, file), 'utf8');
      const expected = /^# expect: (.*)$/m.exec(text)![1]!;
      // Messages name the file as given; run from the folder so they read as in the testdata.
      const r = await cli('config', 'check', join(testdata, file));
      expectClearFailure(r, expected.replace(file, join(testdata, file)));
    });
  }

  for (const { what, text, expect: expected } of TABLE) {
    it(`${what}: exit 2 and a line saying what to fix`, async () => {
      const file = join(dir, `${what.replace(/[^a-z0-9]+/gi, '-')}.yaml`);
      writeFileSync(file, text);
      expectClearFailure(await cli('config', 'check', file), expected);
    });
  }

  it('a binary file is not echoed back', async () => {
    const file = join(dir, 'binary.yaml');
    writeFileSync(file, Buffer.from('\u0000\u0001secret-bytes\u00ff'));
    const r = await cli('config', 'check', file);
    expectClearFailure(r, 'not a YAML text file');
    expect(r.err.join('\n')).not.toContain('secret-bytes');
  });

  it('a directory, a FIFO and a missing file are refused without blocking', async () => {
    const sub = join(dir, 'a-directory');
    mkdirSync(sub);
    expectClearFailure(await cli('config', 'check', sub), 'not a regular file');
    const fifo = join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    expectClearFailure(await cli('config', 'check', fifo), 'not a regular file');
    expectClearFailure(await cli('config', 'check', join(dir, 'nope.yaml')), 'no such file');
  });
});

/** The built binary, as a user runs it (npm test builds it first). */
describe('the built binary on invalid configs', () => {
  let closedPort: number;
  beforeAll(async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    closedPort = (s.address() as { port: number }).port;
    await new Promise((r) => s.close(r));
  });

  const write = (name: string, text: string | Buffer) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  const expectOneLine = (r: { code: number | null; stderr: string; ms: number }, expected: string) => {
    expect(r.code, r.stderr).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: /);
    expect(lines[0]).toContain(expected);
    expect(r.stderr).not.toMatch(STACK_FRAME);
  };

  it('config check: a 5 MB target, binary bytes, a billion laughs, CHECK_INTERVAL=1us', async () => {
    const big = write(
      'big.yaml',
      `targets:\n  - { name: t, kind: http, target: "ftp://${'a'.repeat(5_000_000)}" }\n`,
    );
    const results = await Promise.all([
      runBinary(['config', 'check', big]),
      runBinary(['config', 'check', write('bin.yaml', Buffer.from([0, 1, 2, 0xff, 0xfe]))]),
      runBinary(['config', 'check', write('laughs.yaml', laughs)]),
      runBinary(['config', 'check', write('empty.yaml', '')], { CHECK_INTERVAL: '1us' }),
    ]);
    expectOneLine(results[0]!, 'must be at most 2048 characters long');
    expect(results[0]!.ms).toBeLessThan(15_000);
    expectOneLine(results[1]!, 'not a YAML text file');
    expectOneLine(results[2]!, 'aliases (*name) expand to too much data');
    expectOneLine(results[3]!, 'environment variable CHECK_INTERVAL: must be from 100ms to 24h (got 1us)');
  });

  it('coalmine run: each start-up failure is exit 2 and one line, never a stack trace or a hang', async () => {
    const fifo = join(dir, 'store.fifo');
    execFileSync('mkfifo', [fifo]);
    const cases: [string, string][] = [
      ['store: { url: "mysql://db/x" }', 'store.url: unknown engine "mysql"'],
      [
        `store: { url: "postgres://coalmine@127.0.0.1:${closedPort}/coalmine" }`,
        `cannot connect to PostgreSQL at 127.0.0.1:${closedPort} (connection refused: is it running?): start it there, fix store.url, or use sqlite:PATH`,
      ],
      ['store: { url: "sqlite:/etc/hostname/data/coalmine.db" }', '/etc/hostname is not a directory'],
      ['store: { url: "sqlite:/proc/self/coalmine.db" }', 'is under /proc, a kernel file system'],
      [`store: { url: "sqlite:${fifo}" }`, 'exists and is not a regular file'],
      ['store: false\nlisten: "0.0.0.0:0"', 'refusing to listen on 0.0.0.0'],
    ];
    const results = await Promise.all(
      cases.map(([text], i) => runBinary(['run', '--config', write(`run-${i}.yaml`, `${text}\n`)])),
    );
    results.forEach((r, i) => {
      expectOneLine(r, cases[i]![1]);
      expect(r.ms).toBeLessThan(15_000);
    });
  });
});
