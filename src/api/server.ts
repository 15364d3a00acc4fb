import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline, Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { Agent } from '../agent/agent.js';
import type { Logger } from '../core/log.js';
import { toReport } from '../core/report.js';
import { exposition } from '../sinks/prometheus/exposition.js';
import { registerHttpMetrics } from '../sinks/prometheus/http-metrics.js';
import type { Auth } from './auth.js';
import { createLimitedServer, type ConnectionLimits, type ConnectionStats } from './connection-limits.js';
import { API_PREFIX, type ApiV1 } from './v1/api.js';
import { HttpError, sendError } from './v1/http.js';
import { CheckBudget, DEFAULT_CHECK_BUDGET } from './v1/rate-limit.js';
import { zodSchemaController } from './v1/zod-provider.js';

export interface AgentServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface AppOptions {
  /** The /api/v1 routes. */
  api?: ApiV1;
  /** Answers what no route does (GET and HEAD only; the dashboard). Default a JSON 404. */
  fallback?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  /** Connection caps and timeouts; defaults in DEFAULT_CONNECTION_LIMITS. */
  limits?: ConnectionLimits;
  /** Told once when the open-file limit lowers the connection cap. */
  log?: Logger;
}

/** Every error of every route, the API's or not, is `{ "error": { "code", "message" } }`. */
function fromError(reply: FastifyReply, err: FastifyError | HttpError): FastifyReply {
  if (err instanceof HttpError) return sendError(reply, err);
  const status = err.statusCode ?? 500;
  if (status >= 500)
    return sendError(reply, new HttpError(500, 'internal', `internal error: ${err.message}`));
  return sendError(reply, new HttpError(status, err.code?.toLowerCase() ?? 'bad_request', err.message));
}

/**
 * The fastify application on the agent's connection-limited http.Server: the API when given, the
 * fallback (the dashboard) for GET and HEAD, a JSON 404 otherwise. Nothing is logged by fastify (the
 * agent has its own logger) and no schema compiler but zod's is loaded.
 */
export function createApp(opts: AppOptions = {}): {
  app: FastifyInstance;
  connections: () => ConnectionStats;
} {
  let connections: (() => ConnectionStats) | undefined;
  const app = Fastify({
    logger: false,
    exposeHeadRoutes: false,
    return503OnClosing: false,
    schemaController: zodSchemaController,
    serverFactory: (handler) => {
      const limited = createLimitedServer(handler, opts.limits, (info) =>
        opts.log?.warn('open-file limit is low: fewer HTTP connections allowed, the rest kept for probes', {
          component: 'api',
          ...info,
        }),
      );
      connections = limited.stats;
      return limited.server;
    },
    frameworkErrors: (err, _req, reply) => {
      if (err.code === 'FST_ERR_BAD_URL')
        return void sendError(
          reply,
          new HttpError(400, 'invalid_query', 'the path is not valid percent-encoding'),
        );
      return void fromError(reply, err);
    },
  });
  app.setErrorHandler((err: FastifyError, _req, reply) => fromError(reply, err));
  if (opts.api) void app.register(opts.api.plugin, { prefix: API_PREFIX });
  const fallback = opts.fallback;
  app.setNotFoundHandler(async (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0]!;
    const inApi = path === API_PREFIX || path.startsWith(`${API_PREFIX}/`);
    if (fallback && (req.method === 'GET' || req.method === 'HEAD') && !inApi) {
      reply.hijack();
      if (await fallback(req.raw, reply.raw)) return;
      reply.raw.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
      reply.raw.end(JSON.stringify({ error: { code: 'not_found', message: `no such endpoint ${path}` } }));
      return;
    }
    if (path === '/' && req.method === 'GET') {
      return reply.type('application/json; charset=utf-8').send(
        JSON.stringify(
          {
            endpoints: [
              'GET /metrics',
              'GET /healthz',
              'POST /check[?target=NAME]',
              'GET /api/v1/openapi.json',
            ],
          },
          null,
          2,
        ) + '\n',
      );
    }
    return sendError(reply, new HttpError(404, 'not_found', `no such endpoint ${path}`));
  });
  return { app, connections: () => connections!() };
}

export interface ServerExtras {
  api?: ApiV1;
  /** The dashboard's files, for GET requests nothing else answered. */
  static?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  /** When set, the legacy POST /check needs a token with the write scope (the agent listens beyond loopback). */
  auth?: Auth;
  /**
   * Probes run on demand by POST /check, on loopback too; pass the API's so both check routes share one.
   * Default a budget of its own (1 probe a second, 20 at once).
   */
  checkBudget?: CheckBudget;
  limits?: ConnectionLimits;
  log?: Logger;
}

const onlyGet = (reply: FastifyReply) =>
  sendError(reply, new HttpError(405, 'method_not_allowed', 'use GET', { allow: 'GET, HEAD' }));

/**
 * The agent's endpoints besides /api/v1: GET /metrics, GET /healthz, POST /check[?target=NAME]. /check
 * only ever runs configured targets by name; it never takes an address from the request.
 */
function agentRoutes(app: FastifyInstance, agent: Agent, extras: ServerExtras, budget: CheckBudget): void {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/metrics',
    handler: (req, reply) => {
      // Compressed when the client asks, as Prometheus does (about a tenth of the bytes); zlib works off
      // the event loop, in libuv's thread pool.
      const gzip = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
      reply.headers({
        'content-type': agent.registry.contentType,
        ...(gzip && { 'content-encoding': 'gzip' }),
        vary: 'accept-encoding',
      });
      if (req.method === 'HEAD') return reply.send();
      // Streamed in slices that let probes start between them (one render was 1-2.5 s at 10,000 targets);
      // fastify waits for the client to read and destroys the stream, which stops rendering, if it goes
      // away. One chunk ahead at most: text waiting in a buffer survives young collections and is promoted.
      const text = Readable.from(exposition(agent.registry), { highWaterMark: 1 });
      if (!gzip) return reply.send(text);
      return reply.send(pipeline(text, createGzip({ level: 1 }), () => {}));
    },
  });
  app.route({
    method: ['GET', 'HEAD'],
    url: '/healthz',
    handler: (_req, reply) =>
      reply
        .type('application/json; charset=utf-8')
        .send(JSON.stringify({ status: 'ok', targets: agent.targetNames().length }, null, 2) + '\n'),
  });
  for (const url of ['/metrics', '/healthz'])
    app.route({ method: ['POST', 'PUT', 'DELETE', 'PATCH'], url, handler: (_req, reply) => onlyGet(reply) });
  app.route({
    method: ['GET', 'HEAD', 'PUT', 'DELETE', 'PATCH'],
    url: '/check',
    handler: (_req, reply) =>
      sendError(reply, new HttpError(405, 'method_not_allowed', 'use POST', { allow: 'POST' })),
  });
  app.register(async (scope) => {
    // Bodies are never needed: read and dropped, whatever their type.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, payload, done) => {
      payload.resume();
      payload.on('end', () => done(null, undefined));
      payload.on('error', (err) => done(err, undefined));
    });
    scope.post('/check', async (req, reply) => {
      if (extras.auth) {
        const who = extras.auth.authenticate(req.raw, new URL(`http://agent.invalid${req.url}`));
        if (!who.ok)
          return sendError(
            reply,
            new HttpError(401, 'unauthorized', `a token with the write scope is needed (${who.reason})`, {
              'www-authenticate': 'Bearer',
            }),
          );
        if (!who.scopes.has('write'))
          return sendError(reply, new HttpError(403, 'forbidden', 'this token lacks the write scope'));
      }
      const params = new URL(`http://agent.invalid${req.url}`).searchParams;
      for (const key of params.keys()) {
        if (key !== 'target')
          return sendError(
            reply,
            new HttpError(400, 'unknown_parameter', `unknown query parameter "${key}" (only target=NAME)`),
          );
      }
      const names = params.getAll('target');
      const unknown = names.filter((n) => agent.target(n) === undefined);
      if (unknown.length > 0) {
        return sendError(
          reply,
          new HttpError(
            404,
            'not_found',
            `no configured target named ${unknown.map((n) => JSON.stringify(n)).join(', ')}`,
          ),
        );
      }
      const wanted = [...new Set(names)];
      const d = budget.take(wanted.length > 0 ? wanted.length : agent.targetNames().length);
      if (!d.ok) {
        const seconds = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
        return sendError(
          reply,
          new HttpError(
            429,
            'check_budget_spent',
            `too many checks on demand; the next is possible in ${seconds} s (scheduled probes go on)`,
            { 'retry-after': String(seconds) },
          ),
        );
      }
      const observations = await agent.check(wanted.length > 0 ? wanted : undefined);
      return reply
        .type('application/json; charset=utf-8')
        .send(JSON.stringify({ results: observations.map(toReport) }, null, 2) + '\n');
    });
  });
}

export async function startServer(
  agent: Agent,
  host: string,
  port: number,
  extras: ServerExtras = {},
): Promise<AgentServer> {
  const checkBudget = extras.checkBudget ?? new CheckBudget(DEFAULT_CHECK_BUDGET);
  const { app, connections } = createApp({
    ...(extras.api ? { api: extras.api } : {}),
    ...(extras.static ? { fallback: extras.static } : {}),
    ...(extras.limits ? { limits: extras.limits } : {}),
    ...(extras.log ? { log: extras.log } : {}),
  });
  agentRoutes(app, agent, extras, checkBudget);
  const address = await listen(app, host, port);
  registerHttpMetrics(agent.registry, () => ({ ...connections(), checksRefused: checkBudget.refused }));
  return {
    ...address,
    close: closer(app, () => extras.api?.close()),
  };
}

/**
 * The app as a plain request listener, for a server someone else runs (the overview bench, the e2e API
 * double); close() ends the API's streams.
 */
export async function requestListener(
  opts: AppOptions,
): Promise<{ handle: (req: IncomingMessage, res: ServerResponse) => void; close: () => Promise<void> }> {
  const { app } = createApp(opts);
  await app.ready();
  return { handle: (req, res) => app.routing(req, res), close: closer(app, () => opts.api?.close()) };
}

/** Listens on host:port (0: any free port) and says where. */
export async function listen(
  app: FastifyInstance,
  host: string,
  port: number,
): Promise<{ url: string; port: number }> {
  await app.listen({ host, port });
  const addr = app.server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return { url: `http://${shownHost}:${addr.port}`, port: addr.port };
}

/** An idempotent close: streams ended first, then every connection, idle or not. */
export function closer(app: FastifyInstance, before: () => void): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () =>
    (closing ??= (async () => {
      before();
      const done = app.close();
      app.server.closeAllConnections();
      await done;
    })());
}
