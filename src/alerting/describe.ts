import { formatDuration } from '../core/duration.js';
import { formatValue } from './notifiers/format.js';
import type { AlertRule, Condition } from './rules.js';

/** The value a condition is judged on, as a person reads it: "0.312 s", "4.2 %", "12 days". */
export function formatConditionValue(c: Condition, value: number): string {
  switch (c.kind) {
    case 'latency':
      return `${formatValue(value)} s`;
    case 'lossRatio':
    case 'duplicateRatio':
    case 'reorderRatio':
    case 'errorRate':
    case 'probeFailing':
      return `${formatValue(value * 100)} %`;
    case 'noData':
      return `${formatValue(value)} s`;
    case 'certExpiringWithin':
      return `${formatValue(value)} days`;
  }
}

const RATIO_NAMES = {
  lossRatio: 'loss',
  duplicateRatio: 'duplicates',
  reorderRatio: 'reordering',
  errorRate: 'errors',
} as const;

/** The condition in one line: "p95 latency > 0.25 s", "loss > 1 %", "no data for 5m". */
export function describeCondition(c: Condition): string {
  switch (c.kind) {
    case 'latency':
      return `p${c.percentile} latency > ${formatValue(c.above)} s`;
    case 'lossRatio':
    case 'duplicateRatio':
    case 'reorderRatio':
    case 'errorRate':
      return `${RATIO_NAMES[c.kind]} > ${formatValue(c.above * 100)} %`;
    case 'probeFailing':
      return 'probe failing';
    case 'noData':
      return `no data for ${formatDuration(c.forMs)}`;
    case 'certExpiringWithin':
      return `certificate expires within ${formatValue(c.days)} days`;
  }
}

export function describeSubject(rule: AlertRule): string {
  return rule.target !== undefined
    ? `target ${rule.target}`
    : `flow ${rule.flow.canary} -> ${rule.flow.coalminer}`;
}

/**
 * One sentence with the numbers, for every notifier: what was measured, against what, where, and how
 * many datapoints breached.
 */
export function summarize(
  rule: AlertRule,
  state: 'firing' | 'resolved',
  value: number | undefined,
  breachingPoints: number,
): string {
  const c = rule.condition;
  const where = describeSubject(rule);
  const measured = value === undefined ? 'no data' : formatConditionValue(c, value);
  if (state === 'resolved')
    return `${where}: resolved, ${describeCondition(c)} no longer holds (now ${measured})`;
  const what =
    c.kind === 'noData'
      ? `no data for ${measured}`
      : c.kind === 'probeFailing'
        ? `probe failing (${measured} of runs failed)`
        : `${describeCondition(c)}: ${measured}`;
  const { m, n } = rule.datapoints;
  const points = n > 1 ? ` (${breachingPoints} of the last ${n} datapoints breached; fires at ${m})` : '';
  return `${where}: ${what}${points}`;
}
