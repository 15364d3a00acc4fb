import { query, route } from '../route.js';
import { responseSchemas } from '../schemas.js';

export const statusRoutes = [
  route({
    method: 'GET',
    path: '/status',
    scope: 'read',
    operationId: 'status',
    summary: 'Agent version, uptime, counts, store writer and API statistics',
    schema: { querystring: query({}), response: { 200: () => responseSchemas().agentStatus } },
    handle: ({ deps }) => {
      const s = deps.stats();
      return {
        ...deps.ctx.status(),
        api: {
          eventClients: s.events.clients,
          eventClientsDropped: s.events.dropped,
          eventClientsRefused: s.events.refused,
          rateLimited: s.rateLimited,
          checksRefused: s.checksRefused,
        },
      };
    },
  }),
  route({
    method: 'GET',
    path: '/whoami',
    scope: 'read',
    operationId: 'whoami',
    summary: 'The name and scopes of the token this request used',
    schema: { querystring: query({}), response: { 200: () => responseSchemas().whoAmI } },
    handle: ({ who }) => ({ name: who!.name, scopes: [...who!.scopes].sort() }),
  }),
];
