import { z } from 'zod';
import type { TargetInfo, TargetOverview } from '../context.js';
import type { TargetSummary } from '../contract.js';
import { jsonNumber } from '../json-number.js';
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
 * window and per-minute points (see ApiStore.probeOverview), one at a time as the answer is written,
 * each as its JSON text.
 */
async function* targetSummaries(deps: ApiDeps, now: number): AsyncGenerator<string> {
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
  const times = new MinuteTexts(from, to);
  for (const [i, t] of targets.entries()) yield targetSummaryJson(t, overview?.[i], times);
}

const MINUTE_MS = 60_000;

/** `[<time>,` of each minute of the range: every target's sparkline has the same times. */
export class MinuteTexts {
  private readonly texts: string[] = [];
  constructor(
    private readonly from: number,
    to: number,
  ) {
    for (let m = from; m < to; m += MINUTE_MS) this.texts.push(`[${m},`);
  }

  /** `[<time>,` of the point at index k. */
  at(k: number, time: number): string {
    return time === this.from + k * MINUTE_MS ? this.texts[k]! : `[${JSON.stringify(time)},`;
  }
}

/**
 * The JSON text of targetSummary(t, o), byte for byte, written by hand: at 10,000 targets JSON.stringify
 * of the summaries took most of the answer's time in formatting the sparklines' 600,000 numbers (see
 * jsonNumber), and the summaries' 610,000 objects and arrays were garbage right after.
 */
export function targetSummaryJson(
  t: TargetInfo,
  o: TargetOverview | undefined,
  times = new MinuteTexts(0, 0),
): string {
  const status = t.last === undefined ? 'unknown' : t.last.ok ? 'up' : 'down';
  let text =
    `{"name":${JSON.stringify(t.name)},"kind":${JSON.stringify(t.kind)},"target":${JSON.stringify(t.target)}` +
    `,"intervalSeconds":${JSON.stringify(t.intervalSeconds)},"status":"${status}"`;
  if (o) {
    const w = o.window;
    text +=
      `,"window":{"p50":${jsonNumber(w.p50)},"p95":${jsonNumber(w.p95)}` +
      `,"successRatio":${jsonNumber(w.successRatio)},"runs":${JSON.stringify(w.runs)}},"sparkline":[`;
    const points = o.points;
    for (let k = 0; k < points.length; k++) {
      const p = points[k]!;
      // A finite number's text is the same in String() and JSON; JSON.stringify costs a call a point.
      const failures = Number.isFinite(p.failures) ? String(p.failures) : 'null';
      text += `${k === 0 ? '' : ','}${times.at(k, p.time)}${jsonNumber(p.p50)},${failures}]`;
    }
    text += ']';
  } else {
    text += ',"window":{"p50":null,"p95":null,"successRatio":null,"runs":0},"sparkline":[]';
  }
  const last = lastRun(t);
  return `${text}${last ? `,"last":${JSON.stringify(last)}` : ''}}`;
}

/** A target's summary as the contract types it: the reference targetSummaryJson is tested against. */
export function targetSummary(t: TargetInfo, o: TargetOverview | undefined): TargetSummary {
  const summary: TargetSummary = {
    name: t.name,
    kind: t.kind,
    target: t.target,
    intervalSeconds: t.intervalSeconds,
    status: t.last === undefined ? 'unknown' : t.last.ok ? 'up' : 'down',
    window: { p50: null, p95: null, successRatio: null, runs: 0 },
    sparkline: [],
  };
  const last = lastRun(t);
  if (last) summary.last = last;
  if (o) {
    const w = o.window;
    summary.window = { p50: w.p50, p95: w.p95, successRatio: w.successRatio, runs: w.runs };
    summary.sparkline = o.points.map((p) => [p.time, p.p50, p.failures]);
  }
  return summary;
}

function lastRun(t: TargetInfo): TargetSummary['last'] {
  if (!t.last) return undefined;
  const last: NonNullable<TargetSummary['last']> = {
    time: Date.parse(t.last.time),
    ok: t.last.ok,
    durationSeconds: t.last.durationSeconds,
    phases: t.last.phases,
  };
  if (t.last.networkSeconds !== undefined) last.networkSeconds = t.last.networkSeconds;
  if (t.last.error) last.error = { code: t.last.error.code, message: t.last.error.message };
  return last;
}
