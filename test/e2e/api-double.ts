/**
 * A test double of the agent's /api/v1 for the browser tests: a real HTTP server on 127.0.0.1:0 that
 * serves the built dashboard through serveStatic and answers the API routes with generated data
 * shaped by src/api/v1/contract.ts, including a server-sent event stream. It records what the page
 * asked for, so tests can assert the requests as well as the rendering.
 *
 * Alerts, silences and whoami go through the real router (src/api/v1/router.ts) over a MemoryContext's
 * in-memory alerting, so the page meets the real validation, scopes and errors; its alert transitions
 * reach the page through this double's event stream.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type {
  FlowSummary,
  Matrix,
  SchedulePoint,
  ScheduleSeries,
  Series,
  SeriesPoint,
  Status,
  TargetSummary,
} from '../../src/api/v1/contract.js';
import { Auth, hashToken } from '../../src/api/auth.js';
import { serveStatic } from '../../src/api/static.js';
import type { MemoryAlerts } from '../support/memory-alerts.js';
import { MemoryContext, type MemoryContextOptions } from '../support/memory-context.js';
import { requestListener } from '../../src/api/server.js';
import { createApiV1 } from '../../src/api/v1/api.js';
import type { ProbeReport } from '../../src/core/report.js';

/** The double's fleet unless a test gives its own: two canaries, four coalminers in four regions. */
export const DOUBLE_CANARIES = ['canary-us', 'canary-eu'];
export const DOUBLE_COALMINERS = [
  { name: 'eu-west', region: 'eu-west-1' },
  { name: 'us-east', region: 'us-east-1' },
  { name: 'ap-south', region: 'ap-south-1' },
  { name: 'sa-east', region: 'sa-east-1' },
];

export interface ApiDoubleOptions {
  root: string;
  /** A token with the read and write scopes. */
  token: string;
  /** A token with the read scope only. */
  readToken?: string;
  targets: number;
  /** Default DOUBLE_CANARIES. */
  canaries?: string[];
  /** Default DOUBLE_COALMINERS. */
  coalminers?: { name: string; region: string }[];
  /** Milliseconds between event batches. */
  eventEveryMs?: number;
  /** Probe events per batch (rotating over the targets, the first target in every batch). */
  probesPerBatch?: number;
  /** Alert rules, history and silences; default: a few rules in every state over the generated data; false: none. */
  alerts?: NonNullable<MemoryContextOptions['alerts']> | false;
}

export interface ApiDouble {
  url: string;
  requests: { method: string; path: string; query: Record<string, string>; auth: string | undefined }[];
  /** Every probe event sent, by target name. */
  sent: Map<string, ProbeReport[]>;
  flowEventsSent: number;
  targetNames: string[];
  /** The in-memory alerting: transition() a rule and the page gets an `alert` event. */
  alerts: MemoryAlerts | undefined;
  close(): Promise<void>;
}

const KINDS = ['http', 'tcp', 'dns', 'icmp'] as const;
const HTTP_PHASES = ['resolve', 'connect', 'tls', 'processing', 'transfer'] as const;

/** A small deterministic generator, so every run draws the same pictures. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x1_0000_0000;
  };
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** Latency samples (seconds) around `base`, log-normal-ish with an occasional slow tail. */
function samples(rand: () => number, base: number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const z = Math.sqrt(-2 * Math.log(rand() || 1e-9)) * Math.cos(2 * Math.PI * rand());
    const tail = rand() < 0.03 ? 2 + rand() * 4 : 1;
    out.push(base * Math.exp(0.25 * z) * tail);
  }
  return out.sort((a, b) => a - b);
}

function pct(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function targetInfo(i: number): { name: string; kind: (typeof KINDS)[number]; target: string; base: number } {
  const kind = KINDS[i % KINDS.length]!;
  const name = `${kind}-${String(i).padStart(4, '0')}`;
  const target =
    kind === 'http'
      ? `https://svc-${i}.example.internal/health`
      : kind === 'tcp'
        ? `db-${i}.example.internal:5432`
        : kind === 'dns'
          ? `host-${i}.example.internal`
          : `10.0.${i >> 8}.${i & 255}`;
  const base = [0.04, 0.004, 0.012, 0.002][i % 4]! * (1 + (hash(name) % 100) / 100);
  return { name, kind, target, base };
}

export async function startApiDouble(options: ApiDoubleOptions): Promise<ApiDouble> {
  const opts = { canaries: DOUBLE_CANARIES, coalminers: DOUBLE_COALMINERS, ...options };
  const started = Date.now();
  const statics = serveStatic(opts.root);
  const requests: ApiDouble['requests'] = [];
  const sent = new Map<string, ProbeReport[]>();
  const infos = Array.from({ length: opts.targets }, (_, i) => targetInfo(i));
  // Every seventh target is down, so the overview has both states to show.
  const isDown = (i: number) => i % 7 === 3;
  const state = new Map<string, TargetSummary>();
  for (const [i, t] of infos.entries()) {
    const rand = rng(hash(t.name));
    const spark: TargetSummary['sparkline'] = [];
    for (let k = 59; k >= 0; k--) {
      const failed = isDown(i) && k < 10;
      spark.push([
        started - (started % 60_000) - k * 60_000,
        failed ? null : samples(rand, t.base, 3)[1]!,
        failed ? 1 : 0,
      ]);
    }
    const runs = 240;
    state.set(t.name, {
      name: t.name,
      kind: t.kind,
      target: t.target,
      intervalSeconds: 15,
      status: isDown(i) ? 'down' : 'up',
      last: isDown(i)
        ? {
            time: started - 5_000,
            ok: false,
            durationSeconds: 5,
            phases: {},
            error: { code: 'timeout', message: 'no answer within 5s' },
          }
        : { time: started - 5_000, ok: true, durationSeconds: t.base, phases: phasesFor(t.kind, t.base) },
      window: {
        p50: t.base,
        p95: t.base * 1.9,
        successRatio: isDown(i) ? 200 / runs : 1,
        runs,
      },
      sparkline: spark,
    });
  }

  const flows = new Map<string, FlowSummary>();
  opts.canaries.forEach((canary, ci) => {
    opts.coalminers.forEach((c, mi) => {
      if ((ci + mi) % 4 === 3) return; // not every canary serves every coalminer
      const base = 0.002 + 0.03 * mi + 0.01 * ci;
      const rand = rng(hash(canary + c.name));
      const lossy = mi === opts.coalminers.length - 1;
      flows.set(`${canary}/${c.name}`, {
        canary,
        coalminer: c.name,
        transport: 'redis',
        region: c.region,
        status: 'up',
        counts: {
          expected: 36_000,
          received: lossy ? 35_640 : 36_000,
          lost: lossy ? 360 : 0,
          inFlight: 3,
          sendFailed: 0,
          sendFailedArrived: 0,
          droppedLocally: 0,
          duplicated: lossy ? 12 : 0,
          reordered: lossy ? 40 : 2,
          late: 0,
          stale: 0,
        },
        window: {
          p50: base,
          p95: base * 1.8,
          p99: base * 2.6,
          lossRatio: lossy ? 0.01 : 0,
          received: 36_000,
        },
        sparkline: Array.from({ length: 60 }, (_, k) => [
          started - (59 - k) * 60_000,
          samples(rand, base, 3)[1]!,
          lossy && k % 9 === 0 ? 4 : 0,
        ]),
        clockOffset: { seconds: 0.0004 * (mi + 1), errorSeconds: 0.0001 },
      });
    });
  });

  const alertCtx = new MemoryContext({
    version: 'test',
    targets: infos.map((t) => ({ name: t.name, kind: t.kind, target: t.target, intervalSeconds: 15 })),
    ...(opts.alerts === false
      ? {}
      : { alerts: opts.alerts ?? defaultAlerts(started, infos, [...flows.values()]) }),
  });
  const scopedApi = createApiV1(
    alertCtx,
    new Auth([
      { name: 'e2e-writer', sha256: hashToken(opts.token), scopes: ['read', 'write'] },
      ...(opts.readToken
        ? [{ name: 'e2e-reader', sha256: hashToken(opts.readToken), scopes: ['read' as const] }]
        : []),
    ]),
    { rateLimit: false },
  );
  const scoped = await requestListener({ api: scopedApi });
  const scopedPaths = /^\/api\/v1\/(whoami|alerts|alerts\/history|silences|silences\/[^/]+)$/;

  function phasesFor(kind: string, total: number): Record<string, number> {
    if (kind !== 'http') return {};
    const shares = [0.05, 0.15, 0.25, 0.45, 0.1];
    return Object.fromEntries(HTTP_PHASES.map((p, k) => [p, total * shares[k]!]));
  }

  function series(
    from: number,
    to: number,
    step: number,
    base: number,
    seed: number,
    opts2: { http: boolean; flow: boolean; lossy: boolean },
  ): Series {
    const rand = rng(seed);
    const points: SeriesPoint[] = [];
    const bounds: number[] = [];
    for (let k = 0; k <= 24; k++) bounds.push(base * 0.4 * Math.pow(10 / 0.4, k / 24));
    for (let t = from - (from % step); t < to; t += step) {
      const slow = Math.sin(((t - from) / (to - from)) * Math.PI * 3) > 0.8 ? 2.2 : 1;
      const xs = samples(rand, base * slow, 40);
      const failures = opts2.lossy && rand() < 0.15 ? 1 + Math.floor(rand() * 4) : 0;
      const heat = new Array<number>(bounds.length - 1).fill(0);
      for (const x of xs) {
        let b = heat.length - 1;
        while (b > 0 && x < bounds[b]!) b--;
        heat[b]!++;
      }
      const p: SeriesPoint = {
        time: t,
        count: xs.length,
        p1: pct(xs, 1),
        p5: pct(xs, 5),
        p50: pct(xs, 50),
        p90: pct(xs, 90),
        p95: pct(xs, 95),
        p99: pct(xs, 99),
        max: xs[xs.length - 1]!,
        failures,
        heatmap: heat,
      };
      if (opts2.flow) {
        p.duplicated = opts2.lossy && rand() < 0.05 ? 1 : 0;
        p.reordered = rand() < 0.08 ? 2 : 0;
        p.late = 0;
      }
      if (opts2.http) p.phases = phasesFor('http', pct(xs, 50)!);
      points.push(p);
    }
    return {
      from,
      to,
      step,
      resolution: step >= 3_600_000 ? '1h' : step >= 60_000 ? '1m' : 'raw',
      points,
      heatmapBounds: bounds,
    };
  }

  function matrix(): Matrix {
    return {
      canaries: opts.canaries,
      coalminers: opts.coalminers,
      cells: opts.canaries.map((c) =>
        opts.coalminers.map((m) => {
          const f = flows.get(`${c}/${m.name}`);
          return f ? { p95: f.window.p95, lossRatio: f.window.lossRatio, status: f.status as Status } : null;
        }),
      ),
    };
  }

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  const error = (res: ServerResponse, status: number, code: string, message: string) =>
    json(res, status, { error: { code, message } });

  const streams = new Set<ServerResponse>();
  alertCtx.events.subscribe((e) => {
    const text = `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;
    for (const s of streams) s.write(text);
  });
  let flowEventsSent = 0;
  let tick = 0;
  const perBatch = Math.min(opts.probesPerBatch ?? 3, infos.length);
  const timer = setInterval(() => {
    if (streams.size === 0) return;
    tick++;
    const now = Date.now();
    const batch: string[] = [];
    for (let k = 0; k < perBatch; k++) {
      const i = k === 0 ? 0 : 1 + ((tick * perBatch + k) % Math.max(1, infos.length - 1));
      const t = infos[i]!;
      const ok = !isDown(i);
      // Distinct durations per event, so the page visibly changes with each one.
      const duration = t.base * (0.7 + ((tick * 37 + k * 11) % 60) / 100);
      const report: ProbeReport = {
        name: t.name,
        kind: t.kind,
        target: t.target,
        time: new Date(now).toISOString(),
        ok,
        durationSeconds: ok ? duration : 5,
        phases: ok ? phasesFor(t.kind, duration) : {},
      };
      if (!ok) report.error = { code: 'timeout', message: 'no answer within 5s' };
      const list = sent.get(t.name) ?? [];
      list.push(report);
      if (list.length > 200) list.shift();
      sent.set(t.name, list);
      batch.push(`event: probe\ndata: ${JSON.stringify(report)}\n\n`);
    }
    if (tick % 5 === 0) {
      for (const f of flows.values()) {
        const next: FlowSummary = {
          ...f,
          counts: { ...f.counts, expected: f.counts.expected + 10, received: f.counts.received + 10 },
        };
        flows.set(`${f.canary}/${f.coalminer}`, next);
        batch.push(`event: flow\ndata: ${JSON.stringify(next)}\n\n`);
        flowEventsSent++;
      }
    }
    const text = batch.join('');
    for (const s of streams) s.write(text);
  }, opts.eventEveryMs ?? 200);

  async function api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const auth = req.headers.authorization;
    requests.push({ method, path: url.pathname, query: Object.fromEntries(url.searchParams), auth });
    if (scopedPaths.test(url.pathname)) {
      scoped.handle(req, res);
      await new Promise((r) => res.once('close', r));
      return;
    }
    const bearer = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const given = url.pathname === '/api/v1/events' ? (url.searchParams.get('token') ?? bearer) : bearer;
    if (given !== opts.token && (opts.readToken === undefined || given !== opts.readToken))
      return error(res, 401, 'unauthorized', 'missing or unknown token');

    const parts = url.pathname.split('/').slice(3).map(decodeURIComponent);
    const range = (): { from: number; to: number; step: number } | string => {
      const to = Number(url.searchParams.get('to') ?? Date.now());
      const from = Number(url.searchParams.get('from') ?? to - 3_600_000);
      const step = Number(url.searchParams.get('step') ?? Math.max(10_000, (to - from) / 300));
      if (![from, to, step].every(Number.isFinite) || from >= to || step <= 0)
        return 'from, to and step must be numbers with from < to';
      if ((to - from) / step > 2000) return 'too many points';
      return { from, to, step };
    };

    if (method === 'GET' && url.pathname === '/api/v1/targets')
      return json(res, 200, { targets: [...state.values()] });
    if (method === 'GET' && url.pathname === '/api/v1/flows')
      return json(res, 200, { flows: [...flows.values()] });
    if (method === 'GET' && url.pathname === '/api/v1/matrix') return json(res, 200, matrix());
    if (method === 'GET' && parts[0] === 'targets' && parts[2] === 'series' && parts.length === 3) {
      const t = infos.find((x) => x.name === parts[1]);
      if (!t) return error(res, 404, 'not_found', `no target named ${JSON.stringify(parts[1])}`);
      const r = range();
      if (typeof r === 'string') return error(res, 400, 'bad_request', r);
      return json(
        res,
        200,
        series(r.from, r.to, r.step, t.base, hash(t.name), {
          http: t.kind === 'http',
          flow: false,
          lossy: true,
        }),
      );
    }
    if (method === 'GET' && parts[0] === 'flows' && parts[3] === 'series' && parts.length === 4) {
      const f = flows.get(`${parts[1]}/${parts[2]}`);
      if (!f) return error(res, 404, 'not_found', 'no such flow');
      const r = range();
      if (typeof r === 'string') return error(res, 400, 'bad_request', r);
      const lossy = (f.window.lossRatio ?? 0) > 0;
      return json(
        res,
        200,
        series(r.from, r.to, r.step, f.window.p50 ?? 0.01, hash(f.canary + f.coalminer), {
          http: false,
          flow: true,
          lossy,
        }),
      );
    }
    if (method === 'GET' && parts[0] === 'flows' && parts[3] === 'schedule' && parts.length === 4) {
      if (!flows.has(`${parts[1]}/${parts[2]}`)) return error(res, 404, 'not_found', 'no such flow');
      const r = range();
      if (typeof r === 'string') return error(res, 400, 'bad_request', r);
      // On schedule: every ping that fell due was attempted (10 a second).
      const points: SchedulePoint[] = [];
      for (let t = r.from - (r.from % r.step); t < r.to; t += r.step) {
        const due = Math.round(r.step / 100);
        points.push({ time: t, due, attempted: due, behindSchedule: 0, behindScheduleSeconds: 0 });
      }
      const body: ScheduleSeries = { from: r.from, to: r.to, step: r.step, resolution: 'raw', points };
      return json(res, 200, body);
    }
    if (url.pathname === '/api/v1/check') {
      if (method !== 'POST') return error(res, 405, 'method_not_allowed', 'use POST');
      if (given !== opts.token) return error(res, 403, 'forbidden', 'the token lacks the write scope');
      const name = url.searchParams.get('target');
      const i = infos.findIndex((x) => x.name === name);
      if (i < 0) return error(res, 404, 'not_found', `no configured target named ${JSON.stringify(name)}`);
      const t = infos[i]!;
      await new Promise((r) => setTimeout(r, 150)); // a check takes a moment
      const ok = !isDown(i);
      const report: ProbeReport = {
        name: t.name,
        kind: t.kind,
        target: t.target,
        time: new Date().toISOString(),
        ok,
        durationSeconds: ok ? t.base * 1.1 : 5,
        phases: ok ? phasesFor(t.kind, t.base * 1.1) : {},
      };
      if (t.kind === 'http' && ok) report.values = { http_status_code: 200 };
      if (!ok) report.error = { code: 'timeout', message: 'no answer within 5s' };
      return json(res, 200, { results: [report] });
    }
    if (method === 'GET' && url.pathname === '/api/v1/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      res.write(`event: hello\ndata: ${JSON.stringify({ version: 'test', time: Date.now() })}\n\n`);
      streams.add(res);
      req.on('close', () => streams.delete(res));
      return;
    }
    return error(res, 404, 'not_found', `no such endpoint ${url.pathname}`);
  }

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://double.invalid');
    const done = (p: Promise<unknown>) =>
      p.catch((e: unknown) => {
        if (!res.headersSent) error(res, 500, 'internal', (e as Error).message);
        else res.destroy();
      });
    if (url.pathname.startsWith('/api/')) return void done(api(req, res, url));
    void done(
      statics(req, res).then((handled) => {
        if (!handled) error(res, 404, 'not_found', 'nothing here');
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    sent,
    get flowEventsSent() {
      return flowEventsSent;
    },
    targetNames: infos.map((t) => t.name),
    alerts: alertCtx.alerts,
    close() {
      closed ??= new Promise<void>((resolve) => {
        clearInterval(timer);
        void scoped.close();
        for (const s of streams) s.end();
        streams.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      });
      return closed;
    },
  };
}

/**
 * Rules in every state over the generated targets and flows: a down target firing, a slow one pending, a
 * lossy flow firing, a recovered flow resolved, and quiet ones; with the history that led there.
 */
function defaultAlerts(
  started: number,
  infos: { name: string }[],
  flows: FlowSummary[],
): NonNullable<MemoryContextOptions['alerts']> {
  const MIN = 60_000;
  const name = (i: number) => infos[i % infos.length]!.name;
  const lossy = flows.find((f) => (f.window.lossRatio ?? 0) > 0);
  const clean = flows.find((f) => f.window.lossRatio === 0);
  const rules: NonNullable<MemoryContextOptions['alerts']>['rules'] = [
    {
      rule: `${name(3)}-failing`,
      subject: { target: name(3) },
      condition: 'probe failing',
      forSeconds: 60,
      state: 'firing',
      activeSince: started - 12 * MIN,
      lastEvaluatedAt: started - 5_000,
      lastValue: 1,
      labels: { severity: 'page', team: 'infra' },
      annotations: { summary: `${name(3)} does not answer` },
    },
    {
      rule: `${name(4)}-p95`,
      subject: { target: name(4) },
      condition: 'p95 latency > 0.05 s',
      datapoints: { m: 2, n: 3 },
      forSeconds: 120,
      state: 'pending',
      activeSince: started - 40_000,
      lastEvaluatedAt: started - 5_000,
      lastValue: 0.0712,
      labels: { severity: 'ticket', team: 'web' },
    },
    {
      rule: `${name(0)}-p95`,
      subject: { target: name(0) },
      condition: 'p95 latency > 0.25 s',
      state: 'ok',
      lastEvaluatedAt: started - 5_000,
      lastValue: 0.0581,
      labels: { severity: 'page', team: 'web' },
    },
    {
      rule: `${name(8)}-cert`,
      subject: { target: name(8) },
      condition: 'certificate expires within 14 days',
      evaluateEverySeconds: 3600,
      state: 'ok',
      lastEvaluatedAt: started - 20 * MIN,
      lastValue: 61.4,
      labels: { severity: 'ticket' },
    },
  ];
  const history: NonNullable<MemoryContextOptions['alerts']>['history'] = [
    { rule: `${name(3)}-failing`, from: 'ok', to: 'pending', at: started - 12 * MIN, value: 1 },
    { rule: `${name(3)}-failing`, from: 'pending', to: 'firing', at: started - 11 * MIN, value: 1 },
    { rule: `${name(4)}-p95`, from: 'ok', to: 'pending', at: started - 40_000, value: 0.0712 },
  ];
  if (lossy) {
    rules.push({
      rule: `loss-${lossy.canary}-${lossy.coalminer}`,
      subject: { canary: lossy.canary, coalminer: lossy.coalminer },
      condition: 'loss > 0.5 %',
      datapoints: { m: 3, n: 5 },
      state: 'firing',
      activeSince: started - 95 * MIN,
      lastEvaluatedAt: started - 5_000,
      lastValue: lossy.window.lossRatio ?? 0.01,
      labels: { severity: 'ticket', team: 'messaging' },
      annotations: { summary: 'messages are being lost on the way' },
    });
    history.push(
      {
        rule: `loss-${lossy.canary}-${lossy.coalminer}`,
        from: 'ok',
        to: 'pending',
        at: started - 97 * MIN,
        value: 0.008,
      },
      {
        rule: `loss-${lossy.canary}-${lossy.coalminer}`,
        from: 'pending',
        to: 'firing',
        at: started - 95 * MIN,
        value: 0.011,
      },
    );
  }
  if (clean) {
    rules.push({
      rule: `p99-${clean.canary}-${clean.coalminer}`,
      subject: { canary: clean.canary, coalminer: clean.coalminer },
      condition: 'p99 latency > 0.1 s',
      state: 'resolved',
      lastEvaluatedAt: started - 5_000,
      lastValue: clean.window.p99 ?? 0.004,
      labels: { severity: 'ticket', team: 'messaging' },
    });
    history.push(
      {
        rule: `p99-${clean.canary}-${clean.coalminer}`,
        from: 'ok',
        to: 'firing',
        at: started - 30 * MIN,
        value: 0.14,
      },
      {
        rule: `p99-${clean.canary}-${clean.coalminer}`,
        from: 'firing',
        to: 'resolved',
        at: started - 3 * MIN,
        value: 0.006,
      },
    );
  }
  return { rules, history };
}
