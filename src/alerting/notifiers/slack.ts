import { formatLabels, formatValue, textLines, title } from './format.js';
import { postJson } from './http.js';
import type { AlertNotification, Notifier } from './types.js';
import { z } from 'zod';
import { defineNotifier, envName, httpUrl } from './definition.js';

export interface SlackOptions {
  /** The incoming-webhook URL (Slack, Mattermost, Rocket.Chat and others take the same body). */
  url: string;
}

interface SlackBlock {
  type: string;
  text?: { type: 'mrkdwn' | 'plain_text'; text: string };
  fields?: { type: 'mrkdwn'; text: string }[];
}

/** The `{text, blocks}` body: `text` is the fallback for clients without blocks and for notifications. */
export function slackBody(n: AlertNotification): { text: string; blocks: SlackBlock[] } {
  const emoji = n.state === 'firing' ? ':rotating_light:' : ':white_check_mark:';
  const fields: { type: 'mrkdwn'; text: string }[] = [
    { type: 'mrkdwn', text: `*Value*\n${formatValue(n.value)}` },
    { type: 'mrkdwn', text: `*Since*\n${new Date(n.startsAt).toISOString()}` },
  ];
  if (n.endsAt !== undefined) {
    fields.push({ type: 'mrkdwn', text: `*Until*\n${new Date(n.endsAt).toISOString()}` });
  }
  if (Object.keys(n.labels).length > 0) {
    fields.push({ type: 'mrkdwn', text: `*Labels*\n\`${formatLabels(n.labels)}\`` });
  }
  const blocks: SlackBlock[] = [
    { type: 'section', text: { type: 'mrkdwn', text: `${emoji} *${title(n)}*\n${n.summary}` } },
    { type: 'section', fields },
  ];
  if (n.dashboardUrl) {
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: `<${n.dashboardUrl}|Open the dashboard>` },
    });
  }
  return { text: textLines(n).join('\n'), blocks };
}

/** Slack-compatible incoming webhook. */
export class SlackNotifier implements Notifier {
  readonly kind = 'slack';
  readonly #url: string;
  constructor(opts: SlackOptions) {
    this.#url = opts.url;
  }

  async send(n: AlertNotification, signal: AbortSignal): Promise<void> {
    await postJson(this.#url, JSON.stringify(slackBody(n)), {}, signal);
  }
}

export const slackNotifier = defineNotifier({
  kind: 'slack',
  summary: 'Slack-compatible incoming webhook',
  options: z.strictObject({
    url: httpUrl('the incoming-webhook URL').optional(),
    urlEnv: envName.optional().describe('Environment variable holding the incoming-webhook URL'),
  }),
  secrets: [{ key: 'url', required: true }],
  create: (_o, secrets) => new SlackNotifier({ url: secrets.url('url') }),
});
