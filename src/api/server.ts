import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Agent } from '../agent/agent.js';
import type { Logger } from '../core/log.js';
import { toReport } from '../core/report.js';
import { exposition } from '../sinks/prometheus/exposition.js';
import { registerHttpMetrics } from '../sinks/prometheus/http-metrics.js';
import type { Auth } from './auth.js';
import { createLimitedServer, type ConnectionLimits } from './connection-limits.js';
import { CheckBudget, DEFAULT_CHECK_BUDGET } from './v1/rate-limit.js';
import type { ApiV1Handler } from './v1/router.js';

export interface AgentServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(text);
}

function sendError(
  res: ServerResponse,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, { error: message }, headers);
}

export interface ServerExtras {
  /** The /api/v1 router: answers (true) or passes (false). */
  api?: ApiV1Handler;
  /** The dashboard's files, for GET requests nothing else answered. */
  static?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  /** When set, the legacy POST /check needs a token with the write scope (the agent listens beyond loopback). */
  auth?: Auth;
  /**
   * Probes run on demand by POST /check, on loopback too; pass the API's so both check routes share one.
   * Default a budget of its own (1 probe a second, 20 at once).
   */
  checkBudget?: CheckBudget;
  /** Connection caps and timeouts; defaults in DEFAULT_CONNECTION_LIMITS. */
  limits?: ConnectionLimits;
  /** Told once when the open-file limit lowers the connection cap. */
  log?: Logger;
}

/**
 * The agent's HTTP endpoints: /api/v1 (when given), GET /metrics, GET /healthz, POST /check[?target=NAME]
 * and the dashboard. /check only ever runs configured targets by name; it never takes an address from
 * the request.
 */
export function handler(agent: Agent, extras: ServerExtras = {}) {
  const budget = extras.checkBudget ?? new CheckBudget(DEFAULT_CHECK_BUDGET);
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // The API reads its own request bodies: it goes first, before anything drains the request.
    try {
      if (extras.api && (await extras.api(req, res))) return;
    } catch (err) {
      if (!res.headersSent) sendError(res, 500, `internal error: ${(err as Error).message}`);
      else res.destroy();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://agent.invalid');
    const method = req.method ?? 'GET';
    // Bodies are never needed; drain so a client's upload does not stall the connection.
    req.resume();
    try {
      switch (url.pathname) {
        case '/metrics': {
          if (method !== 'GET' && method !== 'HEAD')
            return sendError(res, 405, 'use GET', { allow: 'GET, HEAD' });
          // Compressed when the client asks, as Prometheus does (about a tenth of the bytes); zlib
          // works off the event loop, in libuv's thread pool.
          const gzip = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
          res.writeHead(200, {
            'content-type': agent.registry.contentType,
            ...(gzip && { 'content-encoding': 'gzip' }),
            vary: 'accept-encoding',
          });
          if (method === 'HEAD') return void res.end();
          // Streamed in slices that let probes start between them (one render was 1-2.5 s at 10,000
          // targets); pipeline waits for the client to read and stops rendering if it goes away. One
          // chunk ahead at most: text waiting in a buffer survives young collections and is promoted.
          const text = Readable.from(exposition(agent.registry), { highWaterMark: 1 });
          if (gzip) await pipeline(text, createGzip({ level: 1 }), res);
          else await pipeline(text, res);
          return;
        }
        case '/healthz':
          if (method !== 'GET' && method !== 'HEAD')
            return sendError(res, 405, 'use GET', { allow: 'GET, HEAD' });
          return sendJson(res, 200, { status: 'ok', targets: agent.targetNames().length });
        case '/check': {
          if (method !== 'POST') return sendError(res, 405, 'use POST', { allow: 'POST' });
          if (extras.auth) {
            const who = extras.auth.authenticate(req, url);
            if (!who.ok)
              return sendError(res, 401, `a token with the write scope is needed (${who.reason})`, {
                'www-authenticate': 'Bearer',
              });
            if (!who.scopes.has('write')) return sendError(res, 403, 'this token lacks the write scope');
          }
          const names = url.searchParams.getAll('target');
          for (const key of url.searchParams.keys()) {
            if (key !== 'target')
              return sendError(res, 400, `unknown query parameter "${key}" (only target=NAME)`);
          }
          const unknown = names.filter((n) => agent.target(n) === undefined);
          if (unknown.length > 0) {
            return sendError(
              res,
              404,
              `no configured target named ${unknown.map((n) => JSON.stringify(n)).join(', ')}`,
            );
          }
          const wanted = [...new Set(names)];
          const d = budget.take(wanted.length > 0 ? wanted.length : agent.targetNames().length);
          if (!d.ok) {
            const seconds = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
            return sendError(
              res,
              429,
              `too many checks on demand; the next is possible in ${seconds} s (scheduled probes go on)`,
              { 'retry-after': String(seconds) },
            );
          }
          const observations = await agent.check(wanted.length > 0 ? wanted : undefined);
          return sendJson(res, 200, { results: observations.map(toReport) });
        }
        default:
          // The dashboard owns every other GET path (it is a single-page app); without it, say what there is.
          if (method === 'GET' && extras.static && (await extras.static(req, res))) return;
          if (url.pathname === '/') {
            return sendJson(res, 200, {
              endpoints: [
                'GET /metrics',
                'GET /healthz',
                'POST /check[?target=NAME]',
                'GET /api/v1/openapi.json',
              ],
            });
          }
          return sendError(res, 404, `no such endpoint ${url.pathname}`);
      }
    } catch (err) {
      if (!res.headersSent) sendError(res, 500, `internal error: ${(err as Error).message}`);
      else res.destroy();
    }
  };
}

export async function startServer(
  agent: Agent,
  host: string,
  port: number,
  extras: ServerExtras = {},
): Promise<AgentServer> {
  const checkBudget = extras.checkBudget ?? new CheckBudget(DEFAULT_CHECK_BUDGET);
  const handle = handler(agent, { ...extras, checkBudget });
  const { server, stats } = createLimitedServer(
    (req, res) => void handle(req, res),
    extras.limits,
    (info) =>
      extras.log?.warn('open-file limit is low: fewer HTTP connections allowed, the rest kept for probes', {
        component: 'api',
        ...info,
      }),
  );
  registerHttpMetrics(agent.registry, () => ({
    ...stats(),
    checksRefused: checkBudget.refused,
  }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${addr.port}`,
    port: addr.port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        extras.api?.close();
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
