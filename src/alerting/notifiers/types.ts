/** One alert state change, as the rule evaluator hands it to every notifier. */
export interface AlertNotification {
  rule: string;
  state: 'firing' | 'resolved';
  /** The value that made the rule fire (or resolve); null when there was no data. */
  value: number | null;
  summary: string;
  /** Epoch milliseconds. */
  startsAt: number;
  /** Epoch milliseconds; set for a resolved alert. */
  endsAt?: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  dashboardUrl?: string;
}

/**
 * Delivers one notification once. It throws on failure (a DeliveryError or SmtpError) and stops
 * when `signal` aborts; retrying, timeouts and queueing are NotifierQueue's job, not the notifier's.
 */
export interface Notifier {
  readonly kind: string;
  send(n: AlertNotification, signal: AbortSignal): Promise<void>;
}
