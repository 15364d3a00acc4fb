import { z } from 'zod';
import type { FlowInfo, FlowOverview } from '../context.js';
import type { FlowSummary } from '../contract.js';
import { parseSeriesQuery } from '../query.js';
import {
  lastHour,
  NO_STORE,
  notFound,
  pathName,
  query,
  requireStore,
  route,
  searchParams,
  seriesQuery,
  type ApiDeps,
} from '../route.js';
import { responseSchemas } from '../schemas.js';

/** CanarySchedule's coalminer for the summed counts of long-retired coalminers (canary.ts PRUNED). */
const PRUNED_COALMINERS = '(pruned)';

const flowParams = z.object({
  canary: pathName('Canary name'),
  coalminer: pathName('Coalminer name'),
});

export const flowRoutes = [
  route({
    method: 'GET',
    path: '/flows',
    scope: 'read',
    operationId: 'listFlows',
    summary: 'Every canary -> coalminer flow with counts, last-hour window and sparkline',
    schema: {
      querystring: query({}),
      response: { 200: () => z.object({ flows: z.array(responseSchemas().flowSummary) }) },
    },
    handle: async ({ deps, now }) => ({ flows: await flowSummaries(deps, now) }),
  }),
  route({
    method: 'GET',
    path: '/flows/{canary}/{coalminer}/series',
    scope: 'read',
    operationId: 'flowSeries',
    summary: "A flow's latency percentiles, loss, duplicates and reordering per step",
    schema: {
      params: flowParams,
      querystring: seriesQuery,
      response: { 200: () => responseSchemas().series },
    },
    errors: { 404: 'No such flow', 503: NO_STORE },
    handle: async ({ params: { canary, coalminer }, query: q, deps, now }) => {
      const range = parseSeriesQuery(searchParams(q), now);
      const flows = deps.ctx.flows();
      if (!flows.some((f) => f.canary === canary && f.coalminer === coalminer)) {
        throw notFound(
          'flow',
          `${canary}/${coalminer}`,
          flows.map((f) => `${f.canary}/${f.coalminer}`),
        );
      }
      return requireStore(deps.ctx).flowSeries(canary, coalminer, range.from, range.to, range.step);
    },
  }),
  route({
    method: 'GET',
    path: '/flows/{canary}/{coalminer}/schedule',
    scope: 'read',
    operationId: 'flowSchedule',
    summary:
      "The canary's side of a flow per step: pings due, attempted, and how far behind schedule " +
      '(due = attempted + behind schedule); recorded by the agent that runs the canary',
    schema: {
      params: flowParams,
      querystring: seriesQuery,
      response: { 200: () => responseSchemas().scheduleSeries },
    },
    errors: { 404: 'Neither a flow this agent receives nor one its canaries ping', 503: NO_STORE },
    /**
     * The agent that runs the canary records the schedule, so besides the flows this agent's coalminers
     * receive, the pairs its own canaries ping are known here too (from status(); "(pruned)" is a sum,
     * not a coalminer).
     */
    handle: async ({ params: { canary, coalminer }, query: q, deps, now }) => {
      const range = parseSeriesQuery(searchParams(q), now);
      const known = new Set(deps.ctx.flows().map((f) => `${f.canary}/${f.coalminer}`));
      for (const s of deps.ctx.status().canaries ?? [])
        if (s.coalminer !== PRUNED_COALMINERS) known.add(`${s.canary}/${s.coalminer}`);
      if (!known.has(`${canary}/${coalminer}`)) throw notFound('flow', `${canary}/${coalminer}`, [...known]);
      return requireStore(deps.ctx).scheduleSeries(canary, coalminer, range.from, range.to, range.step);
    },
  }),
];

/**
 * Every flow with its live counts and, from the store in one call for all of them, the last hour's window
 * and per-minute points (see ApiStore.flowOverview).
 */
export async function flowSummaries(deps: ApiDeps, now: number): Promise<FlowSummary[]> {
  const { from, to } = lastHour(now);
  const flows = deps.ctx.flows();
  let overview: readonly FlowOverview[] | undefined;
  if (deps.ctx.store) {
    try {
      overview = await deps.ctx.store.flowOverview(flows, from, to);
    } catch {
      // As for targets: keep the live part.
    }
  }
  return flows.map((f, i) => flowSummary(f, overview?.[i]));
}

function flowSummary(f: FlowInfo, o: FlowOverview | undefined): FlowSummary {
  const summary: FlowSummary = {
    canary: f.canary,
    coalminer: f.coalminer,
    transport: f.transport,
    region: f.region,
    status: f.status,
    counts: f.counts,
    window: f.window ?? { p50: null, p95: null, p99: null, lossRatio: null, received: 0 },
    sparkline: [],
  };
  if (f.clockOffset) summary.clockOffset = f.clockOffset;
  if (o) {
    const w = o.window;
    if (w.received > 0 || f.window === undefined) {
      summary.window = { p50: w.p50, p95: w.p95, p99: w.p99, lossRatio: w.lossRatio, received: w.received };
    }
    summary.sparkline = o.points.map((p) => [p.time, p.p50, p.failures]);
  }
  return summary;
}
