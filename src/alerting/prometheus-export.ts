import { stringify } from 'yaml';
import { subjectLabels, type AlertRule, type Condition } from './rules.js';

/** rate() and increase() need two scrapes inside their range; a shorter range yields no data. */
export const MIN_RATE_WINDOW_MS = 60_000;

/**
 * Translates alert rules into a Prometheus rule file (group `coalmine`), so the same rules can run
 * in Prometheus against the metrics coalmine exports instead of in the agent.
 *
 * Approximations, because Prometheus sees scraped counters, not the agent's own datapoints:
 * - one datapoint is a range of max(evaluateEvery, 1m) ending at the evaluation time;
 * - M of N is `sum_over_time((<cond> > bool T)[N*every:every]) >= M`, a subquery whose steps are
 *   aligned to wall-clock multiples of `every`, not to the agent's own evaluation times;
 * - a datapoint without data is an empty result: a ratio over a window without traffic has none (its
 *   denominator is filtered by `> 0`, not left to give NaN). missingData `breaching` turns an empty
 *   result into a breach (`or on() vector(1)`); `notBreaching` and `ignore` leave it empty, which never
 *   breaches: Prometheus cannot keep a state through a gap as `ignore` does in the agent. noData judges
 *   time, not values, and has no missing-data policy.
 */
export function toPrometheusRules(rules: readonly AlertRule[]): string {
  const out = {
    groups: [{ name: 'coalmine', rules: rules.map(toPrometheusRule) }],
  };
  return stringify(out, { lineWidth: 0 });
}

interface PrometheusRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations: Record<string, string>;
}

function toPrometheusRule(rule: AlertRule): PrometheusRule {
  const { m, n } = rule.datapoints;
  const q = query(rule);
  // Every query aggregates its series away, so a breach and the stand-in for no data both carry no labels.
  const missingBreaches = rule.missingData === 'breaching' && rule.condition.kind !== 'noData';
  const expr =
    m === 1 && n === 1
      ? `${q.expr} ${q.op} ${q.threshold}${missingBreaches ? ` or on() absent(${q.expr})` : ''}`
      : // The range stops 1ms short of N steps so that it holds exactly N subquery points. The bool
        // form is empty only without data, so that is where a missing datapoint becomes a breach.
        `sum_over_time((${q.expr} ${q.op} bool ${q.threshold}${missingBreaches ? ' or on() vector(1)' : ''})[${promDuration(n * rule.evaluateEveryMs - 1)}:${promDuration(rule.evaluateEveryMs)}]) >= ${m}`;
  const labels = { ...subjectLabels(rule), ...rule.labels };
  const breaches = n === 1 ? '' : ` in ${m} of the last ${n} datapoints`;
  return {
    alert: rule.name,
    expr,
    ...(rule.forMs > 0 && { for: promDuration(rule.forMs) }),
    labels,
    annotations: { summary: `${q.summary}${breaches}`, ...rule.annotations },
  };
}

/** The condition as `<expr> <op> <threshold>`, split so that M-of-N can use the `bool` form. */
interface Query {
  expr: string;
  op: '>' | '<' | '==';
  threshold: string;
  summary: string;
}

function query(rule: AlertRule): Query {
  const c: Condition = rule.condition;
  const window = promDuration(Math.max(rule.evaluateEveryMs, MIN_RATE_WINDOW_MS));
  const isFlow = rule.flow !== undefined;
  const who = isFlow ? `flow ${rule.flow.canary} -> ${rule.flow.coalminer}` : `target ${rule.target}`;
  const subject: [string, string][] = isFlow
    ? [
        ['canary', rule.flow.canary],
        ['coalminer', rule.flow.coalminer],
      ]
    : [['target', rule.target!]];
  const sel = (extra: Record<string, string> = {}, not: Record<string, string> = {}): string =>
    selector([...subject, ...Object.entries(extra)], Object.entries(not));
  const inc = (metric: string, s = sel()) => `sum(increase(${metric}${s}[${window}]))`;
  // A window without traffic has no ratio (no data), not NaN.
  const ratio = (num: string, den: string, above: number, what: string): Query => ({
    expr: `${num} / (${den} > 0)`,
    op: '>',
    threshold: num2s(above),
    summary: `${what} of ${who} above ${num2s(above)} over ${window}`,
  });
  switch (c.kind) {
    case 'latency': {
      const bucket = isFlow
        ? `coalmine_message_latency_seconds_bucket${sel({ from: 'intended' })}`
        : `coalmine_probe_duration_seconds_bucket${sel()}`;
      return {
        expr: `histogram_quantile(${c.percentile / 100}, sum by (le) (rate(${bucket}[${window}])))`,
        op: '>',
        threshold: num2s(c.above),
        summary: `p${c.percentile} latency of ${who} above ${num2s(c.above)}s over ${window}`,
      };
    }
    case 'lossRatio': {
      const lost = inc('coalmine_messages_lost_total');
      return ratio(lost, `(${inc('coalmine_messages_received_total')} + ${lost})`, c.above, 'loss ratio');
    }
    case 'duplicateRatio':
      return ratio(
        inc('coalmine_messages_duplicated_total'),
        inc('coalmine_messages_received_total'),
        c.above,
        'duplicate ratio',
      );
    case 'reorderRatio':
      return ratio(
        inc('coalmine_messages_reordered_total'),
        inc('coalmine_messages_received_total'),
        c.above,
        'reorder ratio',
      );
    case 'errorRate':
      return isFlow
        ? ratio(
            inc('coalmine_message_send_errors_total'),
            inc('coalmine_messages_sent_total'),
            c.above,
            'send error rate',
          )
        : ratio(
            inc('coalmine_probes_total', sel({}, { result: 'success' })),
            inc('coalmine_probes_total'),
            c.above,
            'error rate',
          );
    case 'probeFailing':
      return {
        expr: `max(probe_success${sel()})`,
        op: '==',
        threshold: '0',
        summary: `probe of ${who} failing`,
      };
    case 'noData': {
      const metric = isFlow ? 'coalmine_messages_received_total' : 'coalmine_probes_total';
      const d = promDuration(c.forMs);
      // absent() covers a series that never existed or vanished; increase() one that stopped moving.
      return {
        expr: `(sum(increase(${metric}${sel()}[${d}])) or (absent(${metric}${sel()}) - 1))`,
        op: '==',
        threshold: '0',
        summary: `no data from ${who} for ${d}`,
      };
    }
    case 'certExpiringWithin':
      return {
        expr: `min(probe_ssl_earliest_cert_expiry${sel()}) - time()`,
        op: '<',
        threshold: num2s(c.days * 86_400),
        summary: `TLS certificate of ${who} expires within ${num2s(c.days)} days`,
      };
  }
}

/** A label selector of equality and inequality matchers; JSON string escaping is valid PromQL. */
function selector(equal: [string, string][], notEqual: [string, string][]): string {
  const parts = [
    ...equal.map(([k, v]) => `${k}=${JSON.stringify(v)}`),
    ...notEqual.map(([k, v]) => `${k}!=${JSON.stringify(v)}`),
  ];
  return `{${parts.join(',')}}`;
}

/** Milliseconds as a Prometheus duration in the largest unit that divides it exactly. */
export function promDuration(ms: number): string {
  const units: [string, number][] = [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  for (const [u, size] of units) if (ms % size === 0) return `${ms / size}${u}`;
  return `${Math.round(ms)}ms`;
}

function num2s(n: number): string {
  return String(n);
}
