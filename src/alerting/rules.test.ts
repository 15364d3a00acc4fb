import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { alertingConfigSchema } from './rules.js';

function problems(rules: unknown[]): string[] {
  const r = alertingConfigSchema.safeParse({ rules });
  if (r.success) throw new Error('accepted');
  return r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

const base = { name: 'web-slow', target: 'web', condition: { latency: { percentile: 95, above: 0.5 } } };

describe('alertingConfigSchema', () => {
  it('applies the defaults: 1 of 1, every 15s, missing data not breaching', () => {
    const { rules } = alertingConfigSchema.parse({ rules: [base] });
    expect(rules[0]).toEqual({
      name: 'web-slow',
      target: 'web',
      condition: { kind: 'latency', percentile: 95, above: 0.5 },
      datapoints: { m: 1, n: 1 },
      forMs: 0,
      evaluateEveryMs: 15_000,
      missingData: 'notBreaching',
      labels: {},
      annotations: {},
    });
  });

  it('parses a flow rule with durations, M-of-N and a policy', () => {
    const { rules } = alertingConfigSchema.parse({
      rules: [
        {
          name: 'eu-stalled',
          flow: { canary: 'canary-us', coalminer: 'eu-west' },
          condition: { noData: { for: '2m' } },
          datapoints: { m: 2, n: 3 },
          for: '1m30s',
          evaluateEvery: '30s',
          missingData: 'ignore',
          repeatInterval: '4h',
          labels: { severity: 'page' },
          annotations: { summary: 'no pings from canary-us at eu-west' },
        },
      ],
    });
    expect(rules[0]).toMatchObject({
      flow: { canary: 'canary-us', coalminer: 'eu-west' },
      condition: { kind: 'noData', forMs: 120_000 },
      datapoints: { m: 2, n: 3 },
      forMs: 90_000,
      evaluateEveryMs: 30_000,
      missingData: 'ignore',
      repeatIntervalMs: 14_400_000,
      labels: { severity: 'page' },
    });
  });

  it('has a JSON Schema for editors, like the rest of the config', () => {
    const schema = z.toJSONSchema(alertingConfigSchema, {
      io: 'input',
      unrepresentable: 'any',
    }) as unknown as {
      properties: { rules: { items: { properties: Record<string, unknown> } } };
    };
    expect(Object.keys(schema.properties.rules.items.properties)).toContain('missingData');
  });

  it('defaults to no rules', () => {
    expect(alertingConfigSchema.parse({}).rules).toEqual([]);
  });

  const invalid: [string, unknown[], string][] = [
    [
      'neither target nor flow',
      [{ name: 'a', condition: { errorRate: { above: 0.1 } } }],
      '0: a rule watches exactly one of target',
    ],
    [
      'both target and flow',
      [{ ...base, flow: { canary: 'c', coalminer: 'm' } }],
      '0: a rule watches exactly one of target',
    ],
    [
      'no condition',
      [{ ...base, condition: {} }],
      '0.condition: exactly one condition is needed (one of latency, lossRatio',
    ],
    [
      'two conditions',
      [{ ...base, condition: { errorRate: { above: 0.1 }, probeFailing: {} } }],
      '0.condition: exactly one condition is needed (one of latency, lossRatio, duplicateRatio, reorderRatio, errorRate, probeFailing, noData, certExpiringWithin), got errorRate, probeFailing',
    ],
    [
      'an unknown condition',
      [{ ...base, condition: { slow: {} } }],
      '0.condition: unknown condition "slow" (one of latency,',
    ],
    [
      'percentile 80',
      [{ ...base, condition: { latency: { percentile: 80, above: 1 } } }],
      '0.condition.latency.percentile: percentile is one of 50, 90, 95, 99',
    ],
    [
      'a ratio above 1',
      [{ ...base, condition: { errorRate: { above: 5 } } }],
      '0.condition.errorRate.above: a ratio is between 0 and 1',
    ],
    ['m above n', [{ ...base, datapoints: { m: 3, n: 2 } }], '0.datapoints.m: m must not exceed n'],
    ['n of 0', [{ ...base, datapoints: { m: 1, n: 0 } }], '0.datapoints.n: n must be at least 1'],
    [
      'a bad policy',
      [{ ...base, missingData: 'zero' }],
      '0.missingData: missingData is one of breaching, notBreaching, ignore',
    ],
    ['a bad duration', [{ ...base, for: '5 minutes' }], '0.for: expected a duration like 15s'],
    [
      'a bad noData duration',
      [{ ...base, condition: { noData: { for: 'soon' } } }],
      '0.condition.noData.for: expected a duration',
    ],
    [
      'evaluateEvery of 0',
      [{ ...base, evaluateEvery: 0 }],
      '0.evaluateEvery: must be from 100ms to 24h (got 0)',
    ],
    [
      'repeatInterval of a year',
      [{ ...base, repeatInterval: '365d' }],
      '0.repeatInterval: must be from 1s to 7d (got "365d")',
    ],
    [
      'a latency threshold past a day',
      [{ ...base, condition: { latency: { percentile: 99, above: 1e9 } } }],
      '0.condition.latency.above: must be from 0 to 86400 (seconds)',
    ],
    [
      'loss on a target',
      [{ ...base, condition: { lossRatio: { above: 0.01 } } }],
      '0.condition.lossRatio: lossRatio applies to a flow, not a target',
    ],
    [
      'probeFailing on a flow',
      [{ name: 'f', flow: { canary: 'c', coalminer: 'm' }, condition: { probeFailing: {} } }],
      '0.condition.probeFailing: probeFailing applies to a target, not a flow',
    ],
    ['a bad name', [{ ...base, name: 'has space' }], '0.name: a rule name is 1-128 letters'],
    ['a duplicate name', [base, base], '1.name: duplicate rule name "web-slow"'],
    ['an unknown field', [{ ...base, severity: 'page' }], '0: Unrecognized key: "severity"'],
  ];
  for (const [what, rules, expected] of invalid) {
    it(`rejects ${what} with a clear message`, () => {
      const got = problems(rules);
      expect(
        got.some((p) => p.startsWith(`rules.${expected}`)),
        got.join('\n'),
      ).toBe(true);
    });
  }
});
