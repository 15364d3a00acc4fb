import { describe, expect, it } from 'vitest';
import type { TargetInfo, TargetOverview } from '../context.js';
import { MinuteTexts, targetSummary, targetSummaryJson } from './targets.js';

const HOUR_END = Date.UTC(2025, 0, 1, 12, 1);
const MIN = 60_000;

const targets: TargetInfo[] = [
  { name: 'never-ran', kind: 'tcp', target: 'db:5432', intervalSeconds: 15 },
  {
    name: 'web "quoted" \u2028 é',
    kind: 'http',
    target: 'https://example.test/?a=1&b=<2>',
    intervalSeconds: 0.5,
    last: {
      name: 'web',
      kind: 'http',
      target: 'https://example.test/',
      time: '2025-01-01T11:59:58.123Z',
      ok: true,
      durationSeconds: 0.012345678,
      networkSeconds: 0.0041,
      phases: { resolve: 0.000012, connect: 0.0021, tls: 0.004567891, processing: 1.5 },
    },
  },
  {
    name: 'down',
    kind: 'dns',
    target: '10.0.0.53',
    intervalSeconds: 60,
    last: {
      name: 'down',
      kind: 'dns',
      target: '10.0.0.53',
      time: '2025-01-01T12:00:01.000Z',
      ok: false,
      durationSeconds: 2,
      phases: {},
      error: { code: 'timeout', message: 'no answer in 2000 ms\n"retrying"' },
    },
  },
];

/** An hour of points with p50s as the store gives them (whole ns / 1e9), gaps and failures. */
function overview(seed: number): TargetOverview {
  let s = seed;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const points = Array.from({ length: 60 }, (_, k) => {
    const runs = next() < 0.2 ? 0 : 1 + Math.floor(next() * 30);
    const failures = Math.floor(next() * 3) % (runs + 1);
    const p50 = runs > failures ? Math.round(Math.exp(next() * 25)) / 1e9 : null;
    return { time: HOUR_END - 60 * MIN + k * MIN, p50, failures, runs };
  });
  const runs = points.reduce((n, p) => n + p.runs, 0);
  const failures = points.reduce((n, p) => n + p.failures, 0);
  return {
    window: {
      runs,
      failures,
      successRatio: runs > 0 ? (runs - failures) / runs : null,
      p50: runs > failures ? 0.001234567 : null,
      p95: runs > failures ? 0.0987 : null,
    },
    points,
  };
}

describe('targetSummaryJson', () => {
  it('is the JSON of targetSummary byte for byte: with and without an overview, a last run, an error', () => {
    const overviews: (TargetOverview | undefined)[] = [undefined];
    for (let seed = 1; seed < 200; seed++) overviews.push(overview(seed));
    // No run in the hour, and points off the minute grid the range gives.
    overviews.push({
      window: { runs: 0, failures: 0, successRatio: null, p50: null, p95: null },
      points: [],
    });
    overviews.push({
      window: { runs: 3, failures: 3, successRatio: 0, p50: null, p95: null },
      points: [{ time: 1.5, p50: 1 / 3, failures: 3, runs: 3 }],
    });
    // The hour's minutes as the route gives them, and none (every time written on its own).
    const grids = [new MinuteTexts(HOUR_END - 60 * MIN, HOUR_END), new MinuteTexts(0, 0)];
    let compared = 0;
    for (const times of grids) {
      for (const t of targets) {
        for (const o of overviews) {
          expect(targetSummaryJson(t, o, times)).toBe(JSON.stringify(targetSummary(t, o)));
          compared++;
        }
      }
    }
    expect(compared).toBe(2 * targets.length * overviews.length);
  });
});
