import { formatValue } from './format.js';
import { postJson } from './http.js';
import type { AlertNotification, Notifier } from './types.js';

export interface AlertmanagerOptions {
  /** Alertmanager's base URL, e.g. http://alertmanager:9093 (the /api/v2/alerts path is added). */
  url: string;
}

/** One postableAlert of Alertmanager's v2 OpenAPI spec. */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt?: string;
  generatorURL?: string;
}

export function postableAlert(n: AlertNotification): PostableAlert {
  const alert: PostableAlert = {
    // alertname last so a label cannot override the rule's identity.
    labels: { ...n.labels, alertname: n.rule },
    annotations: { summary: n.summary, value: formatValue(n.value), ...n.annotations },
    startsAt: new Date(n.startsAt).toISOString(),
  };
  // An endsAt in the past is how a client tells Alertmanager the alert is resolved.
  if (n.state === 'resolved') alert.endsAt = new Date(n.endsAt ?? Date.now()).toISOString();
  if (n.dashboardUrl) alert.generatorURL = n.dashboardUrl;
  return alert;
}

/** Alertmanager v2 API: Alertmanager then does grouping, silences, inhibition and routing. */
export class AlertmanagerNotifier implements Notifier {
  readonly kind = 'alertmanager';
  readonly #endpoint: string;
  constructor(opts: AlertmanagerOptions) {
    this.#endpoint = `${opts.url.replace(/\/+$/, '')}/api/v2/alerts`;
  }

  async send(n: AlertNotification, signal: AbortSignal): Promise<void> {
    await postJson(this.#endpoint, JSON.stringify([postableAlert(n)]), {}, signal);
  }
}
