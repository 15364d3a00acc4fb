import { z } from 'zod';
import { HttpError } from '../http.js';
import { NO_ALERTING, pathName, query, requireAlerts, route } from '../route.js';
import { responseSchemas } from '../schemas.js';
import { checkedSilence, newSilenceSchema } from '../silence-body.js';

export const silenceRoutes = [
  route({
    method: 'GET',
    path: '/silences',
    scope: 'read',
    operationId: 'listSilences',
    summary: 'Active silences and those that ended in the last 24 h, newest first',
    schema: {
      querystring: query({}),
      response: { 200: () => z.object({ silences: z.array(responseSchemas().silence) }) },
    },
    errors: { 404: NO_ALERTING },
    handle: ({ deps }) => ({ silences: requireAlerts(deps.ctx).silences() }),
  }),
  route({
    method: 'POST',
    path: '/silences',
    scope: 'write',
    operationId: 'createSilence',
    summary: 'Mute the notifications (not the evaluation) of matching rules until endsAt',
    bodyShape: '{"matchers": {NAME: VALUE, ...}, "durationSeconds": N}',
    ownBodyMessages: true,
    schema: {
      querystring: query({}),
      body: newSilenceSchema,
      response: { 201: () => responseSchemas().silence },
    },
    errors: {
      404: NO_ALERTING,
      413: 'Body over the size limit',
      415: 'Body is not application/json',
    },
    handle: ({ body, deps, now }) => {
      const alerts = requireAlerts(deps.ctx);
      return alerts.addSilence(checkedSilence(body, now));
    },
  }),
  route({
    method: 'DELETE',
    path: '/silences/{id}',
    scope: 'write',
    operationId: 'expireSilence',
    summary: 'End a silence now; it stays listed, inactive, for 24 h',
    schema: {
      params: z.object({ id: pathName('The silence id') }),
      querystring: query({}),
      response: { 204: null },
    },
    errors: { 404: 'No silence with that id, or alerting is not configured' },
    handle: ({ params: { id }, deps }) => {
      if (!requireAlerts(deps.ctx).expireSilence(id)) {
        throw new HttpError(
          404,
          'not_found',
          `no silence with id ${JSON.stringify(id.slice(0, 100))} (ended ones are kept for 24 h)`,
        );
      }
      return undefined;
    },
  }),
];
