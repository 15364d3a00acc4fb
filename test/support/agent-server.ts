// The agent's real HTTP server (src/api/server.ts) over a real Agent, with the /api/v1 router and two
// tokens, on 127.0.0.1:0: for the connection-limit, check-budget and fuzz tests.
import { Agent } from '../../src/agent/agent.js';
import { AgentApiContext } from '../../src/agent/api-context.js';
import { resolveAuth } from '../../src/api/auth.js';
import type { ConnectionLimits } from '../../src/api/connection-limits.js';
import { startServer, type AgentServer } from '../../src/api/server.js';
import { apiConfigSchema } from '../../src/api/v1/config.js';
import { CheckBudget } from '../../src/api/v1/rate-limit.js';
import { createApiV1, type ApiV1Options } from '../../src/api/v1/api.js';
import { parseConfig } from '../../src/config/load.js';
import type { Logger } from '../../src/core/log.js';

export const READ_TOKEN = 'read-token-0123456789abcdef';
export const WRITE_TOKEN = 'write-token-0123456789abcdef';

export interface ServedAgent {
  url: string;
  port: number;
  agent: Agent;
  ctx: AgentApiContext;
  server: AgentServer;
  budget: CheckBudget;
  /** Probe runs so far, scheduled or on demand. */
  runs(): number;
  close(): Promise<void>;
}

export interface ServeAgentOptions {
  /** The agent's YAML config (targets and all). */
  config: string;
  limits?: ConnectionLimits;
  api?: ApiV1Options;
  /** The check-now budget shared by both check routes; default 1000/s, burst 1000 (out of the way). */
  checkBudget?: { perSecond: number; burst: number };
  log?: Logger;
  /** Run the scheduler (default false: probes run only on demand). */
  start?: boolean;
}

export async function serveAgent(opts: ServeAgentOptions): Promise<ServedAgent> {
  let runs = 0;
  const late: { ctx?: AgentApiContext } = {};
  const agent = new Agent(parseConfig(opts.config), {
    processMetrics: false,
    onObservation: (o) => {
      runs++;
      late.ctx?.observed(o);
    },
  });
  const ctx = (late.ctx = new AgentApiContext(agent, '0.0.0-test', Date.now()));
  const auth = resolveAuth(
    apiConfigSchema.parse({
      tokens: [
        { name: 'reader', token: READ_TOKEN, scopes: ['read'] },
        { name: 'writer', token: WRITE_TOKEN, scopes: ['read', 'write'] },
      ],
    }),
    {},
  ).auth;
  const budget = new CheckBudget(opts.checkBudget ?? { perSecond: 1000, burst: 1000 });
  const api = createApiV1(ctx, auth, { rateLimit: false, ...opts.api, checkBudget: budget });
  const server = await startServer(agent, '127.0.0.1', 0, {
    api,
    checkBudget: budget,
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
  if (opts.start) agent.start();
  let closing: Promise<void> | undefined;
  return {
    url: server.url,
    port: server.port,
    agent,
    ctx,
    server,
    budget,
    runs: () => runs,
    close: () =>
      (closing ??= (async () => {
        await server.close();
        await agent.close();
      })()),
  };
}
