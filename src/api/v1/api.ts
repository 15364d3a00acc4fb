import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import type { z } from 'zod';
import { tokenCookie, type Auth } from '../auth.js';
import type { Scope } from './config.js';
import type { ApiContext } from './context.js';
import { HttpError, sendError, tooLarge } from './http.js';
import { CheckBudget, DEFAULT_CHECK_BUDGET, RateLimiter } from './rate-limit.js';
import type { ApiDeps, ApiRoute, ApiV1Stats, Call } from './route.js';
import { apiV1Routes } from './routes/index.js';
import { EventHub } from './sse.js';
import { RequestValidationError, type ZodTypeProvider } from './zod-provider.js';

export type { ApiV1Stats } from './route.js';
export const API_PREFIX = '/api/v1';

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

/** The /api/v1 routes as a fastify plugin (register it with prefix API_PREFIX), with their state. */
export interface ApiV1 {
  plugin(app: FastifyInstance): Promise<void>;
  /** Ends the event streams. Idempotent. */
  close(): void;
  stats(): ApiV1Stats;
}

type Who = { name: string; scopes: ReadonlySet<Scope> };

export function createApiV1(ctx: ApiContext, auth: Auth, opts: ApiV1Options = {}): ApiV1 {
  const maxBodyBytes = opts.maxBodyBytes ?? 64 * 1024;
  const now = opts.now ?? Date.now;
  // The ecosystem's @fastify/rate-limit counts requests in fixed windows; this is a token bucket
  // (a burst, then a steady rate) on an injectable clock, whose refusals AgentStatus.api reports.
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
  const deps: Omit<ApiDeps, 'openapi'> = { ctx, hub, checkBudget, stats };
  const openapi = async () =>
    // Only the first request for it loads the generator and builds the document.
    (doc ??= (await import('./openapi.js')).openApiDocument(ctx.version));
  const who = new WeakMap<FastifyRequest, Who>();
  const started = new WeakMap<FastifyRequest, number>();

  async function plugin(app: FastifyInstance): Promise<void> {
    // Only JSON bodies; an empty one is no body (POST check takes either).
    app.removeAllContentTypeParsers();
    app.addContentTypeParser(
      'application/json',
      { parseAs: 'string', bodyLimit: maxBodyBytes },
      (_req, text, done) => {
        const body = text as string;
        if (body.length === 0) return done(null, undefined);
        try {
          done(null, JSON.parse(body));
        } catch (err) {
          done(
            new HttpError(400, 'invalid_body', `the body is not JSON: ${(err as Error).message}`),
            undefined,
          );
        }
      },
    );

    app.addHook('onRequest', async (req) => {
      started.set(req, now());
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
    });
    app.addHook('onSend', async (_req, reply) => {
      reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff');
    });
    app.setErrorHandler((err: FastifyError, req, reply) =>
      sendError(reply, apiError(err, req, maxBodyBytes)),
    );
    app.setNotFoundHandler((req, reply) => sendError(reply, noRoute(req.url)));

    const typed = app.withTypeProvider<ZodTypeProvider>();
    for (const r of apiV1Routes) {
      const [status, answer] = Object.entries(r.schema.response)[0]!;
      typed.route({
        method: r.method,
        url: r.path.replace(/\{(\w+)\}/g, ':$1'),
        schema: {
          ...(r.schema.params ? { params: r.schema.params } : {}),
          ...(r.schema.querystring ? { querystring: r.schema.querystring } : {}),
          ...(r.schema.body ? { body: r.schema.body } : {}),
        },
        bodyLimit: maxBodyBytes,
        config: { route: r },
        ...(r.scope === null
          ? {}
          : {
              onRequest: async (req: FastifyRequest, reply: FastifyReply) => {
                who.set(req, authorize(req, reply, auth, r.scope!));
              },
            }),
        handler: async (req, reply) => {
          const call: Call<ApiRoute['schema']> = {
            request: req,
            reply,
            params: req.params as never,
            query: req.query as never,
            body: req.body as never,
            deps: { ...deps, openapi },
            who: who.get(req),
            now: started.get(req) ?? now(),
          };
          const result = await r.handle(call);
          if (reply.sent) return reply;
          reply.code(Number(status));
          if (answer === null) return reply.send();
          if (result instanceof Readable) return reply.send(result);
          return reply.type('application/json; charset=utf-8').send(JSON.stringify(result));
        },
      });
    }
  }

  return { plugin, close: () => hub.close(), stats };
}

/** A 404, or a 405 with Allow when another method has this path. */
function noRoute(url: string): HttpError {
  const path = (url.split('?')[0] ?? '').slice(API_PREFIX.length);
  const segments = path.split('/');
  const allowed = apiV1Routes
    .filter((r) => {
      const pattern = r.path.split('/');
      return (
        pattern.length === segments.length &&
        pattern.every((p, i) => (p.startsWith('{') ? segments[i] !== '' : p === segments[i]))
      );
    })
    .map((r) => r.method);
  if (allowed.length > 0) {
    return new HttpError(405, 'method_not_allowed', `use ${allowed.join(' or ')} for ${API_PREFIX}${path}`, {
      allow: allowed.join(', '),
    });
  }
  return new HttpError(
    404,
    'not_found',
    `no endpoint ${API_PREFIX}${path}; see ${API_PREFIX}/openapi.json for the list`,
  );
}

/** Every error, ours or fastify's, in the one shape. */
function apiError(err: FastifyError, req: FastifyRequest, maxBodyBytes: number): HttpError {
  if (err instanceof HttpError) return err;
  const r = (req.routeOptions.config as { route?: ApiRoute } | undefined)?.route;
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return tooLarge(maxBodyBytes);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HttpError(
        415,
        'unsupported_media_type',
        `the body must be application/json${r?.bodyShape ? `: ${r.bodyShape}` : ''}`,
      );
  }
  if (err instanceof RequestValidationError) {
    return validationError(err.issues[0], (err as { validationContext?: string }).validationContext, req, r);
  }
  const status = err.statusCode ?? 500;
  if (status >= 500) return new HttpError(500, 'internal', `internal error: ${err.message}`);
  return new HttpError(status, err.code?.toLowerCase() ?? 'bad_request', err.message);
}

function validationError(
  issue: z.core.$ZodIssue | undefined,
  part: string | undefined,
  req: FastifyRequest,
  r: ApiRoute | undefined,
): HttpError {
  const message = issue?.message ?? 'invalid request';
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  if (part === 'body') {
    return new HttpError(
      400,
      'invalid_body',
      r?.ownBodyMessages || !r?.bodyShape ? message : `the body must be ${r.bodyShape}: ${message}${where}`,
    );
  }
  if (part === 'params') {
    return new HttpError(400, 'invalid_query', `path parameter ${issue?.path.join('.') ?? ''}: ${message}`);
  }
  if (issue?.code === 'unrecognized_keys') return new HttpError(400, 'unknown_parameter', message);
  const key = String(issue?.path[0] ?? '');
  const given = (req.query as Record<string, unknown>)[key];
  if (Array.isArray(given)) {
    return new HttpError(400, 'invalid_query', `"${key}" is given ${given.length} times; give it once`);
  }
  return new HttpError(
    400,
    'invalid_query',
    issue?.code === 'custom' || issue?.code === 'invalid_format' || issue?.code === 'invalid_value'
      ? message
      : `"${key}": ${message}`,
  );
}

function authorize(req: FastifyRequest, reply: FastifyReply, auth: Auth, scope: Scope): Who {
  const who = auth.authenticate(req.raw, new URL(`http://api.invalid${req.url}`));
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
  if (who.via === 'query') reply.header('set-cookie', tokenCookie(who.token));
  return { name: who.name, scopes: who.scopes };
}

function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return req.headers['sec-fetch-site'] !== 'cross-site';
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
