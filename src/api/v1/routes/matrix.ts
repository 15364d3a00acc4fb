import type { Matrix } from '../contract.js';
import { query, route } from '../route.js';
import { responseSchemas } from '../schemas.js';
import { flowSummaries } from './flows.js';

export const matrixRoutes = [
  route({
    method: 'GET',
    path: '/matrix',
    scope: 'read',
    operationId: 'matrix',
    summary: 'Canaries by coalminers: p95 and loss of each flow over the last hour',
    schema: { querystring: query({}), response: { 200: () => responseSchemas().matrix } },
    handle: async ({ deps, now }): Promise<Matrix> => {
      const flows = await flowSummaries(deps, now);
      const canaries = [...new Set(flows.map((f) => f.canary))].sort();
      const regions = new Map<string, string>();
      for (const f of flows) if (!regions.has(f.coalminer)) regions.set(f.coalminer, f.region);
      const coalminers = [...regions.keys()].sort().map((name) => ({ name, region: regions.get(name)! }));
      const cells: Matrix['cells'] = canaries.map((canary) =>
        coalminers.map(({ name }) => {
          const f = flows.find((x) => x.canary === canary && x.coalminer === name);
          return f ? { p95: f.window.p95, lossRatio: f.window.lossRatio, status: f.status } : null;
        }),
      );
      return { canaries, coalminers, cells };
    },
  }),
];
