import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkListenSafety, dashboardUrl, isLoopbackHost, resolveAuth } from '../api/auth.js';
import { startServer, type AgentServer } from '../api/server.js';
import { serveStatic } from '../api/static.js';
import { CheckBudget, DEFAULT_CHECK_BUDGET } from '../api/v1/rate-limit.js';
import { createApiV1 } from '../api/v1/api.js';
import type { AgentConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import type { Observation } from '../core/types.js';
import { registerStoreMetrics } from '../sinks/prometheus/store-metrics.js';
import { DEFAULT_STORE_URL } from '../store/config.js';
import { openCheckedStore, writeBatchOf } from '../store/open.js';
import { toProbeRecord, type ResultStore } from '../store/types.js';
import { BatchedWriter } from '../store/writer.js';
import { Agent, VERSION } from './agent.js';
import { AgentApiContext } from './api-context.js';
import { FlowSampler } from './flow-sampler.js';
import { ScheduleSampler } from './schedule-sampler.js';

/** The dashboard's built files: dist/web beside the compiled code (or the source tree, in tests). */
export const WEB_ROOT = join(import.meta.dirname, '../../dist/web');

export interface StackOptions {
  log: Logger;
  onObservation?: (o: Observation) => void;
  /** Flow and canary schedule samples go to the store this often. Default 10 s. */
  flowSampleMs?: number;
}

export interface AgentStack {
  agent: Agent;
  server: AgentServer;
  store: ResultStore | undefined;
  /** The dashboard URL to print, with the generated token when the agent made one. */
  dashboard: string;
  close(): Promise<void>;
}

/**
 * Everything `coalmine run` and the demo start: the agent, the results store behind its batched writer,
 * the HTTP API and dashboard, token auth. Refuses to listen beyond loopback without a configured token.
 */
export async function startStack(config: AgentConfig, opts: StackOptions): Promise<AgentStack> {
  const { auth, configured, generatedToken } = resolveAuth(config.api);
  checkListenSafety(config.listen.host, configured);

  let store: ResultStore | undefined;
  let writer: BatchedWriter | undefined;
  if (config.store !== false) {
    const spec = config.store?.url ?? DEFAULT_STORE_URL;
    store = await openCheckedStore(spec, config.store ? { retention: config.store.retention } : {});
    // An engine that writes on the event loop (SQLite) asks for small batches: a second of 1,000-1,333
    // results in one transaction held the loop up to 49 ms (bench/scale.mjs); 100 at a time, with a turn
    // of the loop between, 21 ms at most. PostgreSQL's writes wait on the network: the writer's default.
    const batchSize = writeBatchOf(store.engine);
    writer = new BatchedWriter(store, {
      ...(batchSize !== undefined && { batchSize }),
      onError: (err) => opts.log.error('store write failed', { component: 'store', err }),
    });
  }

  // The API context needs the agent and the agent's observer needs the context: tie the knot late.
  const late: { ctx?: AgentApiContext } = {};
  const agent = new Agent(config, {
    log: opts.log,
    onObservation: (o) => {
      writer?.pushProbe(toProbeRecord(o));
      late.ctx?.observed(o);
      opts.onObservation?.(o);
    },
    onAlert: (e) => late.ctx?.alertChanged(e),
  });
  const ctx = new AgentApiContext(
    agent,
    VERSION,
    Date.now(),
    store,
    writer && (() => writer.stats()),
    store?.engine ?? 'none',
  );

  const timers: NodeJS.Timeout[] = [];
  if (writer && store) {
    const sampler = new FlowSampler(agent.messaging);
    const schedules = new ScheduleSampler(agent.messaging);
    timers.push(
      setInterval(() => {
        const now = Date.now();
        for (const r of sampler.sample(now)) writer.pushFlow(r);
        for (const r of schedules.sample(now)) writer.pushSchedule(r);
      }, opts.flowSampleMs ?? 10_000),
    );
    const s = store;
    let rolling = false;
    timers.push(
      setInterval(() => {
        if (rolling) return;
        rolling = true;
        s.rollup(Date.now())
          .catch((err: unknown) => opts.log.error('store rollup failed', { component: 'store', err }))
          .finally(() => (rolling = false));
      }, 60_000),
    );
    for (const t of timers) t.unref();
  }

  if (writer)
    registerStoreMetrics(
      agent.registry,
      () => writer.stats(),
      () => store?.overviewDropped?.() ?? 0,
    );

  late.ctx = ctx;
  // One budget for both check routes, so the legacy one is no way around the API's.
  const checkBudget = new CheckBudget(config.api?.checkNow ?? DEFAULT_CHECK_BUDGET);
  const api = createApiV1(ctx, auth, {
    checkBudget,
    ...(config.api?.maxBodyBytes !== undefined ? { maxBodyBytes: config.api.maxBodyBytes } : {}),
    ...(config.api?.rateLimit !== undefined ? { rateLimit: config.api.rateLimit } : {}),
    ...(config.api?.maxEventClients !== undefined ? { maxEventClients: config.api.maxEventClients } : {}),
  });
  const staticFiles = existsSync(join(WEB_ROOT, 'index.html')) ? serveStatic(WEB_ROOT) : undefined;
  if (!staticFiles)
    opts.log.warn('dashboard files not found: run npm run build', { component: 'api', path: WEB_ROOT });
  const server = await startServer(agent, config.listen.host, config.listen.port, {
    api,
    ...(staticFiles ? { static: staticFiles } : {}),
    ...(isLoopbackHost(config.listen.host) ? {} : { auth }),
    checkBudget,
    log: opts.log,
    limits: {
      ...(config.api?.maxConnections !== undefined ? { maxConnections: config.api.maxConnections } : {}),
      ...(config.api?.maxConnectionsPerClient !== undefined
        ? { maxConnectionsPerClient: config.api.maxConnectionsPerClient }
        : {}),
    },
  });
  agent.alerts?.setDashboardUrl(`${server.url}/`);
  if (store && agent.alerts) {
    // Silences and history outlive a restart; a store that cannot answer must not stop alerting.
    await agent.alerts
      .restore(store)
      .catch((err: unknown) => opts.log.error('could not restore alert history and silences', { err }));
  }
  agent.start();
  ctx.start();
  const dashboard = generatedToken ? dashboardUrl(server.url, generatedToken) : `${server.url}/`;

  let closing: Promise<void> | undefined;
  return {
    agent,
    server,
    store,
    dashboard,
    close: () =>
      (closing ??= (async () => {
        for (const t of timers) clearInterval(t);
        ctx.stop();
        await server.close();
        await agent.close();
        await writer?.close();
        await store?.close();
      })()),
  };
}
