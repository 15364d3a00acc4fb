import { createHash } from 'node:crypto';
import { formatLabels, formatValue, title } from './format.js';
import { postJson } from './http.js';
import type { AlertNotification, Notifier } from './types.js';
import { z } from 'zod';
import { defineNotifier, envName, httpUrl } from './definition.js';

export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';

export interface PagerDutyOptions {
  routingKey: string;
  /** Events API v2 endpoint; defaults to PagerDuty's own. */
  url?: string;
  /** The `source` field: where the problem is seen; defaults to "coalmine". */
  source?: string;
  severity?: 'critical' | 'error' | 'warning' | 'info';
}

/** Same rule and labels give the same key, so a resolve closes the incident its trigger opened. */
export function dedupKey(n: AlertNotification): string {
  const key = `${n.rule}${formatLabels(n.labels)}`;
  // PagerDuty caps dedup_key at 255 characters; a hash keeps long label sets stable and unique.
  return key.length <= 255 ? key : `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

export function pagerDutyEvent(n: AlertNotification, opts: PagerDutyOptions): Record<string, unknown> {
  const event: Record<string, unknown> = {
    routing_key: opts.routingKey,
    event_action: n.state === 'firing' ? 'trigger' : 'resolve',
    dedup_key: dedupKey(n),
  };
  if (n.state === 'firing') {
    event.payload = {
      summary: `${title(n)}: ${n.summary}`.slice(0, 1024),
      source: opts.source ?? 'coalmine',
      severity: opts.severity ?? 'error',
      timestamp: new Date(n.startsAt).toISOString(),
      custom_details: { value: formatValue(n.value), labels: n.labels, annotations: n.annotations },
    };
    if (n.dashboardUrl) event.links = [{ href: n.dashboardUrl, text: 'coalmine dashboard' }];
  }
  return event;
}

/** PagerDuty Events API v2. */
export class PagerDutyNotifier implements Notifier {
  readonly kind = 'pagerduty';
  readonly #opts: PagerDutyOptions;
  constructor(opts: PagerDutyOptions) {
    this.#opts = opts;
  }

  async send(n: AlertNotification, signal: AbortSignal): Promise<void> {
    const body = JSON.stringify(pagerDutyEvent(n, this.#opts));
    await postJson(this.#opts.url ?? PAGERDUTY_EVENTS_URL, body, {}, signal);
  }
}

export const pagerdutyNotifier = defineNotifier({
  kind: 'pagerduty',
  summary: 'PagerDuty Events API v2',
  options: z.strictObject({
    routingKey: z.string().min(1).optional(),
    routingKeyEnv: envName.optional(),
    url: httpUrl('the Events API v2 endpoint').optional(),
    severity: z.enum(['critical', 'error', 'warning', 'info']).default('error'),
    source: z.string().min(1).optional(),
  }),
  secrets: [{ key: 'routingKey', required: true }],
  create: (o, secrets) =>
    new PagerDutyNotifier({
      routingKey: secrets.text('routingKey')!,
      severity: o.severity,
      ...(o.url !== undefined && { url: o.url }),
      ...(o.source !== undefined && { source: o.source }),
    }),
});
