import { z } from 'zod';
import { HttpError } from '../http.js';
import { notFound, query, route } from '../route.js';
import { responseSchemas } from '../schemas.js';

export const checkRoutes = [
  route({
    method: 'POST',
    path: '/check',
    scope: 'write',
    operationId: 'checkNow',
    summary: 'Run configured targets now (all, or those named); never an address from the request',
    bodyShape: '{"targets": [NAME, ...]}',
    schema: {
      querystring: query({
        target: z
          .union([z.string(), z.array(z.string())])
          .optional()
          .describe('A configured target name; repeat for several'),
      }),
      body: z.strictObject({ targets: z.array(z.string().max(256)).max(1000).optional() }).optional(),
      response: { 200: () => z.object({ results: z.array(responseSchemas().probeReport) }) },
    },
    errors: {
      404: 'A name is not a configured target; the message lists the configured ones',
      413: 'Body over the size limit',
      415: 'Body is not application/json',
      429: 'The check-now budget (shared by every client) is spent; see Retry-After',
    },
    handle: async ({ query: q, body, deps }) => {
      const names = q.target === undefined ? [] : Array.isArray(q.target) ? [...q.target] : [q.target];
      names.push(...(body?.targets ?? []));
      // Only names of configured targets ever reach check(): the request never supplies an address.
      const configured = deps.ctx.targets().map((t) => t.name);
      const known = new Set(configured);
      const unknown = names.filter((n) => !known.has(n));
      if (unknown.length > 0) throw notFound('target', unknown[0]!, configured);
      const wanted = [...new Set(names)];
      const d = deps.checkBudget.take(wanted.length > 0 ? wanted.length : configured.length);
      if (!d.ok) {
        const seconds = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
        throw new HttpError(
          429,
          'check_budget_spent',
          `too many checks on demand; the next is possible in ${seconds} s (scheduled probes go on)`,
          { 'retry-after': String(seconds) },
        );
      }
      return { results: await deps.ctx.check(wanted.length > 0 ? wanted : undefined) };
    },
  }),
];
