import type { z } from 'zod';
import { HttpError } from '../http.js';
import { query, route } from '../route.js';
import { responseSchemas } from '../schemas.js';

export const eventRoutes = [
  route({
    method: 'GET',
    path: '/events',
    scope: 'read',
    operationId: 'events',
    summary:
      'Server-sent events: hello, then probe (ProbeReport), flow (FlowSummary) and alert ' +
      '(AlertHistoryEntry, on each state change of a rule); `: keepalive` every 15 s',
    schema: {
      querystring: query({}),
      response: {
        200: () => ({
          description:
            'An event stream. A client that falls behind is disconnected and should reconnect. Each ' +
            '`data:` line is the JSON of its event: hello, probe, flow or alert (see x-events)',
          content: { 'text/event-stream': null },
        }),
      },
    },
    errors: { 503: 'Too many streams open' },
    handle: ({ reply, deps, now }) => {
      // The hub writes to the socket itself (bounded per client); fastify stays out of the way.
      if (!deps.hub.admit()) {
        throw new HttpError(503, 'too_many_streams', 'too many event streams are open; retry later', {
          'retry-after': '5',
        });
      }
      reply.hijack();
      deps.hub.open(reply.raw, { version: deps.ctx.version, time: now });
      return undefined;
    },
  }),
];

/** The event payloads, documented beside the stream (OpenAPI has no schema for SSE frames). */
export function eventSchemas(): Record<'hello' | 'probe' | 'flow' | 'alert', z.ZodType> {
  const s = responseSchemas();
  return { hello: s.helloEvent, probe: s.probeReport, flow: s.flowSummary, alert: s.alertHistoryEntry };
}
