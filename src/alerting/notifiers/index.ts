export type { AlertNotification, Notifier } from './types.js';
export { DeliveryError, SmtpError } from './errors.js';
export { NotifierQueue, type NotifierQueueOptions, type NotifierQueueStats } from './queue.js';
export {
  WebhookNotifier,
  sign,
  verifySignature,
  type SignatureCheck,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  type WebhookOptions,
} from './webhook.js';
export { SlackNotifier, slackBody, type SlackOptions } from './slack.js';
export { EmailNotifier, emailMessage, type EmailOptions, type SmtpTls, type SmtpTlsMode } from './email.js';
export {
  AlertmanagerNotifier,
  postableAlert,
  type AlertmanagerOptions,
  type PostableAlert,
} from './alertmanager.js';
export {
  PagerDutyNotifier,
  pagerDutyEvent,
  dedupKey,
  PAGERDUTY_EVENTS_URL,
  type PagerDutyOptions,
} from './pagerduty.js';
