import { stripTrailing } from '../../core/text.js';
import { formatValue } from './format.js';
import { postJson } from './http.js';
import type { AlertNotification, Notifier } from './types.js';
import { z } from 'zod';
import { defineNotifier, httpUrl } from './definition.js';

export interface AlertmanagerOptions {
  /** Alertmanager's base URL, e.g. http://alertmanager:9093 (the /api/v2/alerts path is added). */
  url: string;
  /**
   * A firing alert is sent with endsAt this far after the send (Prometheus sends 4 x its resend delay):
   * the sender re-sends it before then, so if the agent dies Alertmanager resolves it on its own.
   * Default 4 minutes (the agent re-sends every minute).
   */
  validForMs?: number;
  now?: () => number;
}

export const DEFAULT_VALID_FOR_MS = 4 * 60_000;

/** One postableAlert of Alertmanager's v2 OpenAPI spec. */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt?: string;
  generatorURL?: string;
}

export function postableAlert(n: AlertNotification, validUntil?: number): PostableAlert {
  const alert: PostableAlert = {
    // alertname last so a label cannot override the rule's identity.
    labels: { ...n.labels, alertname: n.rule },
    annotations: { summary: n.summary, value: formatValue(n.value), ...n.annotations },
    startsAt: new Date(n.startsAt).toISOString(),
  };
  // An endsAt in the past is how a client tells Alertmanager the alert is resolved.
  if (n.state === 'resolved') alert.endsAt = new Date(n.endsAt ?? Date.now()).toISOString();
  else if (validUntil !== undefined) alert.endsAt = new Date(validUntil).toISOString();
  if (n.dashboardUrl) alert.generatorURL = n.dashboardUrl;
  return alert;
}

/** Alertmanager v2 API: Alertmanager then does grouping, silences, inhibition and routing. */
export class AlertmanagerNotifier implements Notifier {
  readonly kind = 'alertmanager';
  readonly #endpoint: string;
  readonly #validForMs: number;
  readonly #now: () => number;
  constructor(opts: AlertmanagerOptions) {
    this.#endpoint = `${stripTrailing(opts.url, '/')}/api/v2/alerts`;
    this.#validForMs = opts.validForMs ?? DEFAULT_VALID_FOR_MS;
    this.#now = opts.now ?? Date.now;
  }

  async send(n: AlertNotification, signal: AbortSignal): Promise<void> {
    const body = JSON.stringify([postableAlert(n, this.#now() + this.#validForMs)]);
    await postJson(this.#endpoint, body, {}, signal);
  }
}

/** Alertmanager forgets an alert not re-sent within its resolve_timeout (5m): re-send firing ones. */
export const ALERTMANAGER_RESEND_MS = 60_000;

export const alertmanagerNotifier = defineNotifier({
  kind: 'alertmanager',
  summary: "Alertmanager's v2 API",
  options: z.strictObject({
    url: httpUrl("Alertmanager's base URL, e.g. http://alertmanager:9093"),
  }),
  resendFiringMs: ALERTMANAGER_RESEND_MS,
  create: (o) => new AlertmanagerNotifier({ url: o.url }),
});
