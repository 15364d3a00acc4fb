import { alertmanagerNotifier } from './alertmanager.js';
import type { NotifierDefinition } from './definition.js';
import { emailNotifier } from './email.js';
import { pagerdutyNotifier } from './pagerduty.js';
import { slackNotifier } from './slack.js';
import { webhookNotifier } from './webhook.js';

/**
 * Every notifier kind by its config key. Adding a kind is one module exporting a NotifierDefinition and
 * one line here: the config schema, `alerts test` and the engine take it from this table.
 */
export const notifiers = {
  webhook: webhookNotifier,
  slack: slackNotifier,
  email: emailNotifier,
  alertmanager: alertmanagerNotifier,
  pagerduty: pagerdutyNotifier,
} satisfies Record<string, NotifierDefinition>;

export type NotifierKind = keyof typeof notifiers;

export const notifierKinds = Object.keys(notifiers) as NotifierKind[];
