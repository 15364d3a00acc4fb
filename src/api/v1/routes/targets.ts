import { z } from 'zod';
import type { TargetInfo, TargetOverview } from '../context.js';
import type { TargetSummary } from '../contract.js';
import { parseSeriesQuery } from '../query.js';
import {
  lastHour,
  NO_STORE,
  pathName,
  query,
  requireStore,
  requireTarget,
  route,
  searchParams,
  sendJsonList,
  seriesQuery,
  type ApiDeps,
} from '../route.js';
import { responseSchemas } from '../schemas.js';

export const targetRoutes = [
  route({
    method: 'GET',
    path: '/targets',
    scope: 'read',
    operationId: 'listTargets',
    summary: 'Every probe target with its status, last run, last-hour window and sparkline',
    schema: {
      querystring: query({}),
      response: { 200: () => z.object({ targets: z.array(responseSchemas().targetSummary) }) },
    },
    handle: ({ reply, deps, now }) => sendJsonList(reply, 'targets', targetSummaries(deps, now)),
  }),
  route({
    method: 'GET',
    path: '/targets/{name}/series',
    scope: 'read',
    operationId: 'targetSeries',
    summary: "A target's latency percentiles, counts and failures per step",
    schema: {
      params: z.object({ name: pathName('A configured target name') }),
      querystring: seriesQuery,
      response: { 200: () => responseSchemas().series },
    },
    errors: { 404: 'No such target', 503: NO_STORE },
    handle: async ({ params, query: q, deps, now }) => {
      const range = parseSeriesQuery(searchParams(q), now);
      const t = requireTarget(deps.ctx, params.name);
      const store = requireStore(deps.ctx);
      return store.probeSeries(t.name, range.from, range.to, range.step);
    },
  }),
];

/**
 * Every target with its live state and, from the store in one call for all of them, the last hour's
 * window and per-minute points (see ApiStore.probeOverview), one at a time as the answer is written.
 */
async function* targetSummaries(deps: ApiDeps, now: number): AsyncGenerator<TargetSummary> {
  const { from, to } = lastHour(now);
  const targets = deps.ctx.targets();
  let overview: readonly TargetOverview[] | undefined;
  if (deps.ctx.store) {
    try {
      overview = await deps.ctx.store.probeOverview(
        targets.map((t) => t.name),
        from,
        to,
      );
    } catch {
      // The store being down must not take the live overview with it; /status shows its error.
    }
  }
  for (const [i, t] of targets.entries()) yield targetSummary(t, overview?.[i]);
}

function targetSummary(t: TargetInfo, o: TargetOverview | undefined): TargetSummary {
  const summary: TargetSummary = {
    name: t.name,
    kind: t.kind,
    target: t.target,
    intervalSeconds: t.intervalSeconds,
    status: t.last === undefined ? 'unknown' : t.last.ok ? 'up' : 'down',
    window: { p50: null, p95: null, successRatio: null, runs: 0 },
    sparkline: [],
  };
  if (t.last) {
    summary.last = {
      time: Date.parse(t.last.time),
      ok: t.last.ok,
      durationSeconds: t.last.durationSeconds,
      phases: t.last.phases,
    };
    if (t.last.networkSeconds !== undefined) summary.last.networkSeconds = t.last.networkSeconds;
    if (t.last.error) summary.last.error = { code: t.last.error.code, message: t.last.error.message };
  }
  if (o) {
    const w = o.window;
    summary.window = { p50: w.p50, p95: w.p95, successRatio: w.successRatio, runs: w.runs };
    summary.sparkline = o.points.map((p) => [p.time, p.p50, p.failures]);
  }
  return summary;
}
