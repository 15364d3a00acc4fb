// Serving the API for the router tests. Not a test file itself (no .test.ts suffix).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolveAuth } from '../auth.js';
import { apiConfigSchema } from './config.js';
import type { ApiContext } from './context.js';
import { createApiV1, type ApiV1Handler, type ApiV1Options } from './router.js';

export const READ = 'read-token-0123456789abcdef';
export const WRITE = 'write-token-0123456789abcdef';

const open: Server[] = [];
const apis: ApiV1Handler[] = [];

/**
 * The API over `ctx`, with a `reader` (READ) and a `writer` (WRITE) token, served on 127.0.0.1:0 until
 * closeServedApis(). A request the API does not handle goes to `unhandled`, if given.
 */
export async function serveApi(
  ctx: ApiContext,
  opts: ApiV1Options,
  unhandled?: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ origin: string; api: ApiV1Handler }> {
  const cfg = apiConfigSchema.parse({
    tokens: [
      { name: 'reader', token: READ, scopes: ['read'] },
      { name: 'writer', token: WRITE, scopes: ['read', 'write'] },
    ],
  });
  const api = createApiV1(ctx, resolveAuth(cfg, {}).auth, opts);
  const server = createServer((req, res) => {
    void api(req, res).then((handled) => {
      if (!handled) unhandled?.(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  open.push(server);
  apis.push(api);
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, api };
}

/** Closes every API and server serveApi() started (call it in afterEach). */
export async function closeServedApis(): Promise<void> {
  for (const a of apis.splice(0)) a.close();
  await Promise.all(
    open.splice(0).map(
      (s) =>
        new Promise<void>((r) => {
          s.close(() => r());
          s.closeAllConnections();
        }),
    ),
  );
}
