// The /api/v1 routes alone on the real fastify app (src/api/server.ts createApp), for the route tests.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolveAuth } from '../../src/api/auth.js';
import { closer, createApp, listen } from '../../src/api/server.js';
import { createApiV1, type ApiV1, type ApiV1Options } from '../../src/api/v1/api.js';
import { apiConfigSchema } from '../../src/api/v1/config.js';
import type { ApiContext } from '../../src/api/v1/context.js';

export const READ = 'read-token-0123456789abcdef';
export const WRITE = 'write-token-0123456789abcdef';

const open: (() => Promise<void>)[] = [];

/**
 * The API over `ctx`, with a `reader` (READ) and a `writer` (WRITE) token, served on 127.0.0.1:0 until
 * closeServedApis(). A GET or HEAD the API does not answer goes to `unhandled`, if given.
 */
export async function serveApi(
  ctx: ApiContext,
  opts: ApiV1Options,
  unhandled?: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ origin: string; api: ApiV1 }> {
  const cfg = apiConfigSchema.parse({
    tokens: [
      { name: 'reader', token: READ, scopes: ['read'] },
      { name: 'writer', token: WRITE, scopes: ['read', 'write'] },
    ],
  });
  const api = createApiV1(ctx, resolveAuth(cfg, {}).auth, opts);
  const { app } = createApp({
    api,
    ...(unhandled
      ? {
          fallback: async (req: IncomingMessage, res: ServerResponse) => {
            unhandled(req, res);
            return true;
          },
        }
      : {}),
  });
  const { url } = await listen(app, '127.0.0.1', 0);
  open.push(closer(app, () => api.close()));
  return { origin: url, api };
}

/** Closes every API and server serveApi() started (call it in afterEach). */
export async function closeServedApis(): Promise<void> {
  await Promise.all(open.splice(0).map((close) => close()));
}
