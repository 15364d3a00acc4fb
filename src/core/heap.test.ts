import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { leanHeapAtStart, tooBusyForLeanHeap, userSizedHeap } from './heap.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * A child process that allocates as an agent does (mostly short-lived objects, some kept a while) and
 * prints how big V8's young generation got: the real V8 of this Node, not our reading of its docs.
 */
function newSpaceAfterChurn(mode: 'default' | 'lean' | 'lean-then-default'): number {
  const script = `
    import v8 from 'node:v8';
    import { setLeanHeap } from ${JSON.stringify(join(root, 'dist/core/heap.js'))};
    const mode = ${JSON.stringify(mode)};
    if (mode !== 'default') setLeanHeap(true);
    if (mode === 'lean-then-default') setLeanHeap(false);
    const kept = [];
    for (let i = 0; i < 3e6; i++) {
      const o = { i, a: [i, i + 1], s: 'x' + i };
      if (i % 50 === 0) kept.push(o);
      if (kept.length > 20000) kept.length = 0;
    }
    const s = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
    console.log(s.space_size);
  `;
  return Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
}

/**
 * How many calls of a small hot function a child process makes before V8 marks it for optimization (or
 * optimizes it), with or without the small heap: the real tiering of this Node.
 */
function callsBeforeOptimization(mode: 'default' | 'lean'): number {
  const script = `
    import { setLeanHeap } from ${JSON.stringify(join(root, 'dist/core/heap.js'))};
    if (${JSON.stringify(mode)} === 'lean') setLeanHeap(true);
    function f(a) { let s = 0; for (let i = 0; i < 8; i++) s += (a * i) % 7; return s; }
    // %GetOptimizationStatus bits: optimized 16, marked 256, marked concurrent 512, optimizing 1024.
    const status = new Function('f', 'return %GetOptimizationStatus(f)');
    let calls = 0;
    while (calls < 5e6 && (status(f) & (16 | 256 | 512 | 1024)) === 0) {
      for (let i = 0; i < 50; i++) f(calls + i);
      calls += 50;
    }
    console.log(calls);
  `;
  return Number(
    execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    }),
  );
}

describe('lean heap', () => {
  it('sees heap sizes the user chose, on the command line or in NODE_OPTIONS', () => {
    expect(userSizedHeap([], undefined)).toBe(false);
    expect(userSizedHeap(['--enable-source-maps'], '--no-warnings')).toBe(false);
    expect(userSizedHeap(['--max-semi-space-size=16'], undefined)).toBe(true);
    expect(userSizedHeap([], '--max-old-space-size=512')).toBe(true);
    expect(userSizedHeap([], '--no-warnings --optimize-for-size')).toBe(true);
    expect(userSizedHeap(['--max-old-space-size', '512'], undefined)).toBe(true);
    // A longer flag that merely starts the same way is not one of them.
    expect(userSizedHeap(['--max-semi-space-size-x=1'], undefined)).toBe(false);
  });

  it('is chosen at start only for the long-running commands, and never over the user', () => {
    // Decided without touching this process's heap: every case here returns before setting a flag.
    expect(leanHeapAtStart(['node', 'coalmine', 'pair', 'redis://x'], [], undefined)).toBe(false);
    expect(leanHeapAtStart(['node', 'coalmine'], [], undefined)).toBe(false);
    expect(leanHeapAtStart(['node', 'coalmine', 'run'], ['--max-semi-space-size=8'], undefined)).toBe(false);
    expect(leanHeapAtStart(['node', 'coalmine', 'demo'], [], '--optimize-for-size')).toBe(false);
  });

  it('is given up for fast canaries or many probes a second, and says which', () => {
    expect(tooBusyForLeanHeap({ pingsPerSecond: 1000, probesPerSecond: 2000 })).toBeUndefined();
    expect(tooBusyForLeanHeap({ pingsPerSecond: 1001, probesPerSecond: 0 })).toMatch(/canaries.*1000 pings/);
    expect(tooBusyForLeanHeap({ pingsPerSecond: 0, probesPerSecond: 5000 })).toMatch(/targets.*2000 probes/);
  });

  it("keeps this Node's young generation at its first size, and lets it grow again when turned off", () => {
    const grown = newSpaceAfterChurn('default');
    const lean = newSpaceAfterChurn('lean');
    const restored = newSpaceAfterChurn('lean-then-default');
    // V8 starts with two 1 MB semi-spaces here and grows them under churn; lean must not grow them.
    expect(lean).toBeLessThanOrEqual(2.5 * 1024 * 1024);
    expect(grown).toBeGreaterThan(2 * lean);
    expect(restored).toBeGreaterThan(2 * lean);
  });

  it('lets functions run about four times longer before V8 optimizes them, so fewer are', () => {
    const usual = callsBeforeOptimization('default');
    const lean = callsBeforeOptimization('lean');
    expect(usual).toBeLessThan(5e6);
    expect(lean).toBeLessThan(5e6);
    expect(lean).toBeGreaterThanOrEqual(3 * usual);
  });
});
