import { z } from 'zod';
import { notFound, NO_ALERTING, query, requireAlerts, route } from '../route.js';
import { responseSchemas } from '../schemas.js';

const HISTORY_DEFAULT_LIMIT = 100;
const HISTORY_MAX_LIMIT = 1000;

const limitMessage = (input: unknown) =>
  `"limit" must be a whole number from 1 to ${HISTORY_MAX_LIMIT}, not ${JSON.stringify(String(input).slice(0, 40))}`;

export const alertRoutes = [
  route({
    method: 'GET',
    path: '/alerts',
    scope: 'read',
    operationId: 'listAlerts',
    summary: 'Every configured alert rule with its state, last value and the silences muting it',
    schema: {
      querystring: query({}),
      response: { 200: () => z.object({ alerts: z.array(responseSchemas().alertRuleStatus) }) },
    },
    errors: { 404: NO_ALERTING },
    handle: ({ deps }) => ({ alerts: requireAlerts(deps.ctx).rules() }),
  }),
  route({
    method: 'GET',
    path: '/alerts/history',
    scope: 'read',
    operationId: 'alertHistory',
    summary: 'State changes of alert rules, newest first',
    schema: {
      querystring: query({
        rule: z.string().optional().describe('Only this rule (404 when no rule has that name)'),
        limit: z
          .string()
          .regex(/^\d{1,7}$/, { error: (iss) => limitMessage(iss.input) })
          .refine((s) => Number(s) >= 1 && Number(s) <= HISTORY_MAX_LIMIT, {
            error: (iss) => limitMessage(iss.input),
          })
          .optional()
          .describe(`At most this many, 1 to ${HISTORY_MAX_LIMIT}; default ${HISTORY_DEFAULT_LIMIT}`),
      }),
      response: { 200: () => z.object({ history: z.array(responseSchemas().alertHistoryEntry) }) },
    },
    errors: { 404: 'No rule has that name, or alerting is not configured' },
    handle: ({ query: q, deps }) => {
      const alerts = requireAlerts(deps.ctx);
      if (q.rule !== undefined) {
        const names = alerts.rules().map((r) => r.rule);
        if (!names.includes(q.rule)) throw notFound('alert rule', q.rule, names);
      }
      const limit = q.limit === undefined ? HISTORY_DEFAULT_LIMIT : Number(q.limit);
      return { history: alerts.history(q.rule, limit) };
    },
  }),
];
