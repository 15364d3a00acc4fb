import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { tokenCookie, type Auth } from '../auth.js';
import type { Scope } from './config.js';
import type { ApiAlerts, ApiContext, FlowInfo, FlowOverview, TargetInfo, TargetOverview } from './context.js';
import type { FlowSummary, Matrix, TargetSummary, WhoAmI } from './contract.js';
import { exportCsvHeader, exportCsvLine, exportJsonLine } from './export.js';
import {
  HttpError,
  readBody,
  sendError,
  sendJson,
  sendNoContent,
  streamHeaders,
  tooLarge,
  writeWithBackpressure,
} from './http.js';
import { openApiDocument } from './openapi.js';
import { allowOnly, badQuery, parseRange, parseSeriesQuery, single } from './query.js';
import { CheckBudget, DEFAULT_CHECK_BUDGET, RateLimiter } from './rate-limit.js';
import { parseNewSilence } from './silence-body.js';
import { EventHub, type EventHubStats } from './sse.js';

export const API_PREFIX = '/api/v1';

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;
/** How long writing a long list may hold the event loop before letting it go. */
const LIST_SLICE_MS = 5;
/** Configured names listed in a 404, at most. */
const NAMES_SHOWN = 20;
const HISTORY_DEFAULT_LIMIT = 100;
const HISTORY_MAX_LIMIT = 1000;
/** CanarySchedule's coalminer for the summed counts of long-retired coalminers (canary.ts PRUNED). */
const PRUNED_COALMINERS = '(pruned)';

export interface ApiV1Options {
  /** Largest request body; default 64 KiB. */
  maxBodyBytes?: number;
  /** Per-client token bucket; false turns it off. Default 20/s, burst 100. */
  rateLimit?: { perSecond: number; burst: number } | false;
  /** Most event streams at once; default 64. */
  maxEventClients?: number;
  /** Most bytes queued for one event stream before it is disconnected; default 1 MiB. */
  eventQueueBytes?: number;
  /** Default 15 s. */
  keepaliveMs?: number;
  /** Wall clock (Unix ms) for default ranges and hello; default Date.now. */
  now?: () => number;
  /** Monotonic ms for the rate limiter; default performance.now. */
  monotonicNow?: () => number;
  /**
   * Probes run on demand (POST check), shared with the server's legacy POST /check; default a budget of
   * its own of 1 probe a second, 20 at once.
   */
  checkBudget?: CheckBudget;
}

export interface ApiV1Stats {
  events: EventHubStats;
  rateLimited: number;
  /** Check requests refused because the check-now budget was spent. */
  checksRefused: number;
}

/** The /api/v1 request handler: resolves true when it answered, false when the path is not its own. */
export type ApiV1Handler = ((req: IncomingMessage, res: ServerResponse) => Promise<boolean>) & {
  /** Ends the event streams. Idempotent. */
  close(): void;
  stats(): ApiV1Stats;
};

interface Call {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  ctx: ApiContext;
  /** The token's holder and scopes; undefined on routes that need no token. */
  who: { name: string; scopes: ReadonlySet<Scope> } | undefined;
  now: number;
  hub: EventHub;
  maxBodyBytes: number;
  checkBudget: CheckBudget;
  stats: () => ApiV1Stats;
  openapi: () => unknown;
}

interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  /** Relative to /api/v1, with {param} segments, exactly as in the OpenAPI document. */
  path: string;
  /** null: no token needed. */
  scope: Scope | null;
  handle(c: Call): Promise<void> | void;
}

const ROUTES: readonly Route[] = [
  { method: 'GET', path: '/targets', scope: 'read', handle: listTargets },
  { method: 'GET', path: '/flows', scope: 'read', handle: listFlows },
  { method: 'GET', path: '/targets/{name}/series', scope: 'read', handle: targetSeries },
  { method: 'GET', path: '/flows/{canary}/{coalminer}/series', scope: 'read', handle: flowSeries },
  { method: 'GET', path: '/flows/{canary}/{coalminer}/schedule', scope: 'read', handle: flowSchedule },
  { method: 'GET', path: '/matrix', scope: 'read', handle: matrix },
  { method: 'POST', path: '/check', scope: 'write', handle: checkNow },
  { method: 'GET', path: '/events', scope: 'read', handle: events },
  { method: 'GET', path: '/export', scope: 'read', handle: exportResults },
  { method: 'GET', path: '/status', scope: 'read', handle: status },
  { method: 'GET', path: '/whoami', scope: 'read', handle: whoami },
  { method: 'GET', path: '/alerts', scope: 'read', handle: listAlerts },
  { method: 'GET', path: '/alerts/history', scope: 'read', handle: alertHistory },
  { method: 'GET', path: '/silences', scope: 'read', handle: listSilences },
  { method: 'POST', path: '/silences', scope: 'write', handle: createSilence },
  { method: 'DELETE', path: '/silences/{id}', scope: 'write', handle: expireSilence },
  { method: 'GET', path: '/openapi.json', scope: null, handle: (c) => sendJson(c.res, 200, c.openapi()) },
];

/** Every route, for the OpenAPI test and for documentation. */
export const apiV1Routes: readonly { method: string; path: string; scope: Scope | null }[] = ROUTES.map(
  ({ method, path, scope }) => ({ method, path, scope }),
);

export function createApiV1(ctx: ApiContext, auth: Auth, opts: ApiV1Options = {}): ApiV1Handler {
  const maxBodyBytes = opts.maxBodyBytes ?? 64 * 1024;
  const now = opts.now ?? Date.now;
  const limiter =
    opts.rateLimit === false
      ? undefined
      : new RateLimiter({ ...(opts.rateLimit ?? { perSecond: 20, burst: 100 }), now: opts.monotonicNow });
  const hub = new EventHub(ctx.events, {
    maxClients: opts.maxEventClients ?? 64,
    maxQueueBytes: opts.eventQueueBytes ?? 1024 * 1024,
    keepaliveMs: opts.keepaliveMs ?? 15_000,
  });
  const checkBudget =
    opts.checkBudget ?? new CheckBudget({ ...DEFAULT_CHECK_BUDGET, now: opts.monotonicNow });
  let doc: unknown;
  const stats = (): ApiV1Stats => ({
    events: hub.stats(),
    rateLimited: limiter?.limited ?? 0,
    checksRefused: checkBudget.refused,
  });

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const raw = req.url ?? '/';
    if (!raw.startsWith('/')) return false;
    const url = new URL(`http://api.invalid${raw}`);
    if (url.pathname !== API_PREFIX && !url.pathname.startsWith(`${API_PREFIX}/`)) return false;
    try {
      if (limiter) {
        const d = limiter.take(req.socket.remoteAddress ?? 'unknown');
        if (!d.ok) {
          const seconds = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
          throw new HttpError(429, 'rate_limited', `too many requests; retry in ${seconds} s`, {
            'retry-after': String(seconds),
          });
        }
      }
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) > maxBodyBytes) throw tooLarge(maxBodyBytes);
      const method = req.method ?? 'GET';
      const { route, params } = match(url.pathname.slice(API_PREFIX.length), method);
      if (route.method !== 'POST') req.resume(); // bodies are not read; do not let one stall the socket
      const who = route.scope === null ? undefined : authorize(req, res, url, auth, route.scope);
      await route.handle({
        req,
        res,
        url,
        params,
        ctx,
        who,
        now: now(),
        hub,
        maxBodyBytes,
        checkBudget,
        stats,
        openapi: () => (doc ??= openApiDocument(ctx.version)),
      });
    } catch (err) {
      const e =
        err instanceof HttpError
          ? err
          : new HttpError(500, 'internal', `internal error: ${(err as Error)?.message ?? String(err)}`);
      if (!res.headersSent) sendError(res, e);
      else res.destroy();
    }
    return true;
  };
  return Object.assign(handler, { close: () => hub.close(), stats });
}

function match(path: string, method: string): { route: Route; params: Record<string, string> } {
  const segments = path.split('/').slice(1);
  const allowed: string[] = [];
  for (const route of ROUTES) {
    const pattern = route.path.split('/').slice(1);
    if (pattern.length !== segments.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < pattern.length && ok; i++) {
      const p = pattern[i]!;
      const s = segments[i]!;
      if (p.startsWith('{')) {
        if (s === '') ok = false;
        else params[p.slice(1, -1)] = decodeSegment(s);
      } else ok = p === s;
    }
    if (!ok) continue;
    if (route.method === method) return { route, params };
    allowed.push(route.method);
  }
  if (allowed.length > 0) {
    throw new HttpError(405, 'method_not_allowed', `use ${allowed.join(' or ')} for ${API_PREFIX}${path}`, {
      allow: allowed.join(', '),
    });
  }
  throw new HttpError(
    404,
    'not_found',
    `no endpoint ${API_PREFIX}${path}; see ${API_PREFIX}/openapi.json for the list`,
  );
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw badQuery(`path segment ${JSON.stringify(s.slice(0, 60))} is not valid percent-encoding`);
  }
}

function authorize(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  auth: Auth,
  scope: Scope,
): { name: string; scopes: ReadonlySet<Scope> } {
  const who = auth.authenticate(req, url);
  if (!who.ok) {
    const message = {
      missing: 'a token is required: Authorization: Bearer TOKEN (or ?token= on GET)',
      invalid: 'the token is not valid',
      malformed: 'the Authorization header must be "Bearer TOKEN"',
    }[who.reason];
    throw new HttpError(401, 'unauthorized', message, {
      'www-authenticate':
        who.reason === 'missing'
          ? 'Bearer realm="coalmine"'
          : 'Bearer realm="coalmine", error="invalid_token"',
    });
  }
  if (!who.scopes.has(scope)) {
    throw new HttpError(403, 'forbidden', `token "${who.name}" lacks the ${scope} scope`, {
      'www-authenticate': `Bearer realm="coalmine", error="insufficient_scope", scope="${scope}"`,
    });
  }
  // A cookie rides along on any request the browser makes; SameSite=Strict stops cross-site ones, and
  // this stops the rest (an older browser, a sibling origin) from changing anything with it.
  if (who.via === 'cookie' && req.method !== 'GET' && !sameOrigin(req)) {
    throw new HttpError(403, 'cross_origin', 'a cookie-authenticated request must come from the same origin');
  }
  if (who.via === 'query') res.setHeader('set-cookie', tokenCookie(who.token));
  return { name: who.name, scopes: who.scopes };
}

function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return req.headers['sec-fetch-site'] !== 'cross-site';
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

function notFound(what: string, name: string, known: readonly string[]): HttpError {
  const shown = known.slice(0, NAMES_SHOWN).map((n) => JSON.stringify(n));
  const more = known.length > NAMES_SHOWN ? ` and ${known.length - NAMES_SHOWN} more` : '';
  const list =
    known.length === 0 ? `there are no ${what}s configured` : `configured: ${shown.join(', ')}${more}`;
  return new HttpError(404, 'not_found', `no configured ${what} named ${JSON.stringify(name)}; ${list}`);
}

function requireStore(c: Call): NonNullable<ApiContext['store']> {
  if (!c.ctx.store) {
    throw new HttpError(503, 'no_store', 'this agent runs without a results store, so it keeps no history');
  }
  return c.ctx.store;
}

function requireTarget(c: Call, name: string): TargetInfo {
  const targets = c.ctx.targets();
  const t = targets.find((x) => x.name === name);
  if (!t) {
    throw notFound(
      'target',
      name,
      targets.map((x) => x.name),
    );
  }
  return t;
}

/** The last hour in whole minutes, ending with the current minute: up to 60 sparkline points. */
function lastHour(now: number): { from: number; to: number } {
  const to = Math.floor(now / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
  return { from: to - HOUR_MS, to };
}

/**
 * Every target with its live state and, from the store in one call for all of them, the last hour's
 * window and per-minute points (see ApiStore.probeOverview), one at a time as the answer is written.
 */
async function* targetSummaries(c: Call): AsyncGenerator<TargetSummary> {
  const { from, to } = lastHour(c.now);
  const targets = c.ctx.targets();
  let overview: readonly TargetOverview[] | undefined;
  if (c.ctx.store) {
    try {
      overview = await c.ctx.store.probeOverview(
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

/**
 * `{"<key>": [items...]}` written as it is built, in slices that let the event loop go (10,000 targets
 * are about 20 MB of JSON: one JSON.stringify held the agent for a few hundred ms).
 */
async function sendJsonList(c: Call, key: string, items: AsyncIterable<unknown>): Promise<void> {
  const it = items[Symbol.asyncIterator]();
  // The first item before the head, so a failure to build it still answers with an error.
  let next = await it.next();
  c.res.writeHead(200, streamHeaders('application/json; charset=utf-8'));
  let batch = `{${JSON.stringify(key)}:[`;
  let slice = performance.now() + LIST_SLICE_MS;
  for (let first = true; !next.done; first = false) {
    batch += (first ? '' : ',') + JSON.stringify(next.value);
    if (batch.length >= 64 * 1024) {
      if (!(await writeWithBackpressure(c.res, batch))) {
        await it.return?.(); // the client left
        return;
      }
      batch = '';
    }
    if (performance.now() > slice) {
      await new Promise((r) => setImmediate(r));
      slice = performance.now() + LIST_SLICE_MS;
    }
    next = await it.next();
  }
  c.res.end(`${batch}]}`);
}

/**
 * Every flow with its live counts and, from the store in one call for all of them, the last hour's window
 * and per-minute points (see ApiStore.flowOverview).
 */
async function flowSummaries(c: Call): Promise<FlowSummary[]> {
  const { from, to } = lastHour(c.now);
  const flows = c.ctx.flows();
  let overview: readonly FlowOverview[] | undefined;
  if (c.ctx.store) {
    try {
      overview = await c.ctx.store.flowOverview(flows, from, to);
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

async function listTargets(c: Call): Promise<void> {
  allowOnly(c.url.searchParams, []);
  await sendJsonList(c, 'targets', targetSummaries(c));
}

async function listFlows(c: Call): Promise<void> {
  allowOnly(c.url.searchParams, []);
  sendJson(c.res, 200, { flows: await flowSummaries(c) });
}

async function targetSeries(c: Call): Promise<void> {
  const q = parseSeriesQuery(c.url.searchParams, c.now);
  const t = requireTarget(c, c.params.name!);
  const store = requireStore(c);
  sendJson(c.res, 200, await store.probeSeries(t.name, q.from, q.to, q.step));
}

async function flowSeries(c: Call): Promise<void> {
  const q = parseSeriesQuery(c.url.searchParams, c.now);
  const canary = c.params.canary!;
  const coalminer = c.params.coalminer!;
  const flows = c.ctx.flows();
  if (!flows.some((f) => f.canary === canary && f.coalminer === coalminer)) {
    throw notFound(
      'flow',
      `${canary}/${coalminer}`,
      flows.map((f) => `${f.canary}/${f.coalminer}`),
    );
  }
  const store = requireStore(c);
  sendJson(c.res, 200, await store.flowSeries(canary, coalminer, q.from, q.to, q.step));
}

/**
 * The canary's schedule with a coalminer. The agent that runs the canary records it, so besides the flows
 * this agent's coalminers receive, the pairs its own canaries ping are known here too (from status();
 * "(pruned)" is a sum, not a coalminer).
 */
async function flowSchedule(c: Call): Promise<void> {
  const q = parseSeriesQuery(c.url.searchParams, c.now);
  const canary = c.params.canary!;
  const coalminer = c.params.coalminer!;
  const known = new Set(c.ctx.flows().map((f) => `${f.canary}/${f.coalminer}`));
  for (const s of c.ctx.status().canaries ?? [])
    if (s.coalminer !== PRUNED_COALMINERS) known.add(`${s.canary}/${s.coalminer}`);
  if (!known.has(`${canary}/${coalminer}`)) throw notFound('flow', `${canary}/${coalminer}`, [...known]);
  const store = requireStore(c);
  sendJson(c.res, 200, await store.scheduleSeries(canary, coalminer, q.from, q.to, q.step));
}

async function matrix(c: Call): Promise<void> {
  allowOnly(c.url.searchParams, []);
  const flows = await flowSummaries(c);
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
  const body: Matrix = { canaries, coalminers, cells };
  sendJson(c.res, 200, body);
}

/**
 * The request's JSON body, or undefined when it has none. `shape` shows the expected body in the 415.
 */
async function readJson(c: Call, shape: string): Promise<unknown> {
  const body = await readBody(c.req, c.maxBodyBytes);
  if (body.length === 0) return undefined;
  const type = c.req.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new HttpError(415, 'unsupported_media_type', `the body must be application/json: ${shape}`);
  }
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw new HttpError(400, 'invalid_body', `the body is not JSON: ${(err as Error).message}`);
  }
}

const checkBody = z.strictObject({ targets: z.array(z.string().max(256)).max(1000).optional() });

async function checkNow(c: Call): Promise<void> {
  allowOnly(c.url.searchParams, ['target']);
  const names = c.url.searchParams.getAll('target');
  const json = await readJson(c, '{"targets": [NAME, ...]}');
  if (json !== undefined) {
    const parsed = checkBody.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const where = issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
      throw new HttpError(
        400,
        'invalid_body',
        `the body must be {"targets": [NAME, ...]}: ${issue.message}${where}`,
      );
    }
    names.push(...(parsed.data.targets ?? []));
  }
  // Only names of configured targets ever reach check(): the request never supplies an address.
  const configured = c.ctx.targets().map((t) => t.name);
  const known = new Set(configured);
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) throw notFound('target', unknown[0]!, configured);
  const wanted = [...new Set(names)];
  const d = c.checkBudget.take(wanted.length > 0 ? wanted.length : configured.length);
  if (!d.ok) {
    const seconds = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
    throw new HttpError(
      429,
      'check_budget_spent',
      `too many checks on demand; the next is possible in ${seconds} s (scheduled probes go on)`,
      { 'retry-after': String(seconds) },
    );
  }
  const results = await c.ctx.check(wanted.length > 0 ? wanted : undefined);
  sendJson(c.res, 200, { results });
}

function events(c: Call): void {
  allowOnly(c.url.searchParams, []);
  if (!c.hub.open(c.res, { version: c.ctx.version, time: c.now })) {
    throw new HttpError(503, 'too_many_streams', 'too many event streams are open; retry later', {
      'retry-after': '5',
    });
  }
}

async function exportResults(c: Call): Promise<void> {
  const params = c.url.searchParams;
  allowOnly(params, ['target', 'from', 'to', 'format']);
  const name = single(params, 'target');
  if (name === undefined)
    throw badQuery('"target" is required: export?target=NAME&from=MS&to=MS&format=csv|jsonl');
  const format = single(params, 'format') ?? 'jsonl';
  if (format !== 'csv' && format !== 'jsonl')
    throw badQuery(`"format" must be csv or jsonl, not ${JSON.stringify(format)}`);
  const { from, to } = parseRange(params, { now: c.now, defaultRangeMs: 24 * HOUR_MS });
  requireTarget(c, name);
  const store = requireStore(c);
  const filename = `coalmine-${name.replace(/[^A-Za-z0-9_.-]/g, '_')}-${from}-${to}.${format}`;
  const rows = store.exportProbes(name, from, to);
  c.res.writeHead(
    200,
    streamHeaders(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8', {
      'content-disposition': `attachment; filename="${filename}"`,
    }),
  );
  let batch = format === 'csv' ? exportCsvHeader() : '';
  for await (const r of rows) {
    batch += format === 'csv' ? exportCsvLine(r) : exportJsonLine(r);
    if (batch.length >= 64 * 1024) {
      if (!(await writeWithBackpressure(c.res, batch))) return; // client left: stop the query
      batch = '';
    }
  }
  c.res.end(batch);
}

function status(c: Call): void {
  allowOnly(c.url.searchParams, []);
  const s = c.stats();
  sendJson(c.res, 200, {
    ...c.ctx.status(),
    api: {
      eventClients: s.events.clients,
      eventClientsDropped: s.events.dropped,
      eventClientsRefused: s.events.refused,
      rateLimited: s.rateLimited,
      checksRefused: s.checksRefused,
    },
  });
}

function whoami(c: Call): void {
  allowOnly(c.url.searchParams, []);
  const body: WhoAmI = { name: c.who!.name, scopes: [...c.who!.scopes].sort() };
  sendJson(c.res, 200, body);
}

function requireAlerts(c: Call): ApiAlerts {
  if (!c.ctx.alerts) {
    throw new HttpError(
      404,
      'alerting_not_configured',
      'alerting is not configured on this agent: add an `alerting:` section with rules to its config',
    );
  }
  return c.ctx.alerts;
}

function listAlerts(c: Call): void {
  allowOnly(c.url.searchParams, []);
  sendJson(c.res, 200, { alerts: requireAlerts(c).rules() });
}

function alertHistory(c: Call): void {
  const params = c.url.searchParams;
  allowOnly(params, ['rule', 'limit']);
  const rule = single(params, 'rule');
  const limitRaw = single(params, 'limit');
  let limit = HISTORY_DEFAULT_LIMIT;
  if (limitRaw !== undefined) {
    limit = /^\d{1,7}$/.test(limitRaw) ? Number(limitRaw) : NaN;
    if (!(limit >= 1 && limit <= HISTORY_MAX_LIMIT)) {
      throw badQuery(
        `"limit" must be a whole number from 1 to ${HISTORY_MAX_LIMIT}, not ${JSON.stringify(limitRaw.slice(0, 40))}`,
      );
    }
  }
  const alerts = requireAlerts(c);
  if (rule !== undefined) {
    const names = alerts.rules().map((r) => r.rule);
    if (!names.includes(rule)) throw notFound('alert rule', rule, names);
  }
  sendJson(c.res, 200, { history: alerts.history(rule, limit) });
}

function listSilences(c: Call): void {
  allowOnly(c.url.searchParams, []);
  sendJson(c.res, 200, { silences: requireAlerts(c).silences() });
}

async function createSilence(c: Call): Promise<void> {
  allowOnly(c.url.searchParams, []);
  const alerts = requireAlerts(c);
  const json = await readJson(c, '{"matchers": {NAME: VALUE, ...}, "durationSeconds": N}');
  const checked = parseNewSilence(json, c.now);
  sendJson(c.res, 201, alerts.addSilence(checked));
}

function expireSilence(c: Call): void {
  allowOnly(c.url.searchParams, []);
  const id = c.params.id!;
  if (!requireAlerts(c).expireSilence(id)) {
    throw new HttpError(
      404,
      'not_found',
      `no silence with id ${JSON.stringify(id.slice(0, 100))} (ended ones are kept for 24 h)`,
    );
  }
  sendNoContent(c.res);
}
