import type { FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { z } from 'zod';
import type { Scope } from './config.js';
import type { ApiAlerts, ApiContext, ApiStore, TargetInfo } from './context.js';
import { HttpError, streamHeaders } from './http.js';
import type { CheckBudget } from './rate-limit.js';
import type { EventHub, EventHubStats } from './sse.js';

/** Configured names listed in a 404, at most. */
const NAMES_SHOWN = 20;
const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;
/** How long writing a long list may hold the event loop before letting it go. */
const LIST_SLICE_MS = 5;
/** Characters of a long list handed to the socket at once. */
const LIST_CHUNK_CHARS = 64 * 1024;
/**
 * Chunks built ahead of the socket. It takes 16 KiB before it asks the stream to wait for it to drain,
 * and each wait is a turn of the client's reading: with one chunk ahead, 20 MB waited 320 times with
 * nothing to build, and the agent sat idle for about a third of the call. 1 MiB ahead at most.
 */
const LIST_CHUNKS_AHEAD = 16;

export interface ApiV1Stats {
  events: EventHubStats;
  rateLimited: number;
  /** Check requests refused because the check-now budget was spent. */
  checksRefused: number;
}

/** What every route of one API instance shares. */
export interface ApiDeps {
  ctx: ApiContext;
  hub: EventHub;
  checkBudget: CheckBudget;
  stats(): ApiV1Stats;
  /** The OpenAPI document, built on first use. */
  openapi(): unknown;
}

export interface RouteSchema {
  params?: z.ZodObject;
  querystring?: z.ZodObject;
  body?: z.ZodType;
  /**
   * Status to its JSON body's schema; for bodies of other media types, each type with its schema (null:
   * text); null for no body. Functions, so the schemas are built only for the document.
   */
  response: Record<number, (() => z.ZodType | StreamedBody) | null>;
}

export interface StreamedBody {
  description: string;
  content: Record<string, z.ZodType | null>;
}

type Out<T> = T extends z.ZodType ? z.output<T> : undefined;

export interface Call<S extends RouteSchema> {
  request: FastifyRequest;
  reply: FastifyReply;
  params: Out<S['params']>;
  query: Out<S['querystring']>;
  body: Out<S['body']>;
  deps: ApiDeps;
  /** The token's holder; undefined on routes that need none. */
  who: { name: string; scopes: ReadonlySet<Scope> } | undefined;
  /** Wall clock (Unix ms) when the request began. */
  now: number;
}

export interface ApiRoute<S extends RouteSchema = RouteSchema> {
  method: 'GET' | 'POST' | 'DELETE';
  /** Relative to /api/v1, with {param} segments, exactly as in the OpenAPI document. */
  path: string;
  /** null: no token needed. */
  scope: Scope | null;
  operationId: string;
  summary: string;
  schema: S;
  /** Documented error answers beyond the common ones (400, 401, 403, 429). */
  errors?: Record<number, string>;
  /** The expected body as shown in a 400 or 415 about it, e.g. {"targets": [NAME, ...]}. */
  bodyShape?: string;
  /** The body schema's messages name the field at fault themselves: a 400 shows them as they are. */
  ownBodyMessages?: boolean;
  /**
   * Answers the request: what it returns is sent as JSON with the first status of `schema.response`
   * (a Readable is streamed); undefined when the handler answered by itself (reply.send, a hijack).
   */
  handle(c: Call<S>): unknown;
}

/** Keeps a route's schema types for its handler. */
export function route<S extends RouteSchema>(r: ApiRoute<S>): ApiRoute {
  return r as unknown as ApiRoute;
}

// ---- query parameters -------------------------------------------------------------------------

/**
 * A query string of exactly these parameters (and `token`, the query form of the bearer token): an
 * unknown one is a 400, so a typo (`form=`) never silently means the default.
 */
export function query<T extends z.ZodRawShape>(shape: T) {
  const allowed = Object.keys(shape);
  return z.strictObject(
    { ...shape, token: z.string().optional() },
    {
      error: (iss) =>
        iss.code === 'unrecognized_keys'
          ? allowed.length > 0
            ? `unknown query parameter "${iss.keys[0]}" (allowed: ${allowed.join(', ')})`
            : `unknown query parameter "${iss.keys[0]}" (this endpoint takes none)`
          : undefined,
    },
  );
}

const shown = (v: unknown) => JSON.stringify(String(v).slice(0, 40));

/** A time: Unix milliseconds, or an ISO 8601 date-time with a zone (see parseTime in query.ts). */
export const timeParam = (key: string, description: string) =>
  z
    .string()
    .regex(/^(\d{1,15}|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))$/, {
      error: (iss) =>
        `"${key}" must be Unix milliseconds or an ISO 8601 time with a zone (2025-01-02T03:04:05Z), not ${shown(iss.input)}`,
    })
    .optional()
    .describe(description);

export const seriesQuery = query({
  from: timeParam('from', 'Start, Unix ms or ISO 8601 (default: to - 1 h)'),
  to: timeParam('to', 'End, Unix ms or ISO 8601 (default: now)'),
  step: z
    .string()
    .regex(/^\d{1,12}(ms|s|m|h|d)?$/, {
      error: (iss) => `"step" must be milliseconds or a duration like 30s, 5m, 1h; not ${shown(iss.input)}`,
    })
    .optional()
    .describe(
      'Step: ms or 30s, 5m, 1h, 1d; at least 1 s and at most 2000 points (default: about 300 points)',
    ),
});

/** The parsed query as URLSearchParams, for the parsers of query.ts. */
export function searchParams(q: Record<string, string | string[] | undefined>): URLSearchParams {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (k === 'token' || v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) p.append(k, one);
  }
  return p;
}

export const pathName = (description: string) => z.string().min(1).describe(description);

// ---- shared answers ---------------------------------------------------------------------------

export function notFound(what: string, name: string, known: readonly string[]): HttpError {
  const shownNames = known.slice(0, NAMES_SHOWN).map((n) => JSON.stringify(n));
  const more = known.length > NAMES_SHOWN ? ` and ${known.length - NAMES_SHOWN} more` : '';
  const list =
    known.length === 0 ? `there are no ${what}s configured` : `configured: ${shownNames.join(', ')}${more}`;
  return new HttpError(404, 'not_found', `no configured ${what} named ${JSON.stringify(name)}; ${list}`);
}

export function requireStore(ctx: ApiContext): ApiStore {
  if (!ctx.store) {
    throw new HttpError(503, 'no_store', 'this agent runs without a results store, so it keeps no history');
  }
  return ctx.store;
}

export function requireTarget(ctx: ApiContext, name: string): TargetInfo {
  const targets = ctx.targets();
  const t = targets.find((x) => x.name === name);
  if (!t)
    throw notFound(
      'target',
      name,
      targets.map((x) => x.name),
    );
  return t;
}

export function requireAlerts(ctx: ApiContext): ApiAlerts {
  if (!ctx.alerts) {
    throw new HttpError(
      404,
      'alerting_not_configured',
      'alerting is not configured on this agent: add an `alerting:` section with rules to its config',
    );
  }
  return ctx.alerts;
}

export const NO_STORE = 'The agent runs without a results store';
export const NO_ALERTING =
  'Alerting is not configured on this agent (code alerting_not_configured): add an `alerting:` section';

/** The last hour in whole minutes, ending with the current minute: up to 60 sparkline points. */
export function lastHour(now: number): { from: number; to: number } {
  const to = Math.floor(now / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
  return { from: to - HOUR_MS, to };
}

/**
 * Streams `{"<key>": [items...]}` as it is built, in slices that let the event loop go (10,000 targets
 * are about 20 MB of JSON: one JSON.stringify held the agent for a few hundred ms). Each item comes as
 * its JSON text. The first item is built before the head, so a failure to build it still answers with
 * an error. fastify writes the chunks with backpressure and destroys the stream, which stops the items,
 * when the client leaves.
 */
export async function sendJsonList(
  reply: FastifyReply,
  key: string,
  items: AsyncIterable<string>,
): Promise<void> {
  const it = items[Symbol.asyncIterator]();
  const first = await it.next();
  async function* chunks(): AsyncGenerator<string> {
    let next = first;
    let batch = `{${JSON.stringify(key)}:[`;
    let slice = performance.now() + LIST_SLICE_MS;
    try {
      for (let isFirst = true; !next.done; isFirst = false) {
        batch += isFirst ? next.value : `,${next.value}`;
        if (batch.length >= LIST_CHUNK_CHARS) {
          yield batch;
          batch = '';
        }
        if (performance.now() > slice) {
          await new Promise((r) => setImmediate(r));
          slice = performance.now() + LIST_SLICE_MS;
        }
        next = await it.next();
      }
      yield `${batch}]}`;
    } finally {
      if (!next.done) await it.return?.();
    }
  }
  await reply
    .code(200)
    .headers(streamHeaders('application/json; charset=utf-8'))
    .send(Readable.from(chunks(), { highWaterMark: LIST_CHUNKS_AHEAD }));
}
