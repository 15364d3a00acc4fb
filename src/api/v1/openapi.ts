/**
 * The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json. It follows contract.ts; the
 * router's test checks that its paths and the router's routes are the same set.
 */

/** JSON values; kept loose so the literal below reads like the document it is. */
type Json = unknown;

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description: string };
  paths: Record<
    string,
    Record<string, { operationId: string; security?: unknown[] } & Record<string, unknown>>
  >;
  [key: string]: unknown;
}

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const num = { type: 'number' };
const int = { type: 'integer', minimum: 0 };
const str = { type: 'string' };
const nullableNum = { type: ['number', 'null'] };
const status = { type: 'string', enum: ['up', 'down', 'unknown'] };
const sparkline = {
  type: 'array',
  maxItems: 60,
  description: 'Points of the last hour: [time ms, p50 seconds or null, failures]',
  items: {
    type: 'array',
    prefixItems: [num, nullableNum, int],
    minItems: 3,
    maxItems: 3,
  },
};

function obj(properties: Record<string, Json>, required: string[] = Object.keys(properties)): Json {
  return { type: 'object', properties, required, additionalProperties: false };
}

const schemas: Record<string, Json> = {
  Error: obj({
    error: obj({
      code: { type: 'string', description: 'Stable, machine-readable: invalid_query, not_found, ...' },
      message: { type: 'string', description: 'What was wrong, for people' },
    }),
  }),
  ProbeError: obj({ code: str, message: str, cause: str }, ['code', 'message']),
  ProbeReport: obj(
    {
      name: str,
      kind: str,
      target: str,
      time: { type: 'string', format: 'date-time' },
      ok: { type: 'boolean' },
      durationSeconds: { ...num, description: 'Wall time of the run, as blackbox_exporter measures it' },
      networkSeconds: {
        ...num,
        description: "Successful runs: the target's network time (kernel-timed phases; ICMP: mean RTT)",
      },
      phases: { type: 'object', additionalProperties: num, description: 'Seconds per phase' },
      values: { type: 'object', additionalProperties: num },
      detail: { type: 'object' },
      error: ref('ProbeError'),
    },
    ['name', 'kind', 'target', 'time', 'ok', 'durationSeconds', 'phases'],
  ),
  TargetSummary: obj(
    {
      name: str,
      kind: str,
      target: str,
      intervalSeconds: num,
      status,
      last: obj(
        {
          time: num,
          ok: { type: 'boolean' },
          durationSeconds: num,
          networkSeconds: num,
          phases: { type: 'object', additionalProperties: num },
          error: obj({ code: str, message: str }),
        },
        ['time', 'ok', 'durationSeconds', 'phases'],
      ),
      window: {
        ...(obj({ p50: nullableNum, p95: nullableNum, successRatio: nullableNum, runs: int }) as object),
        description:
          "Every run of the last hour in whole minutes, ending with the current one, as the store holds them: its 1-minute rollups and what this agent wrote since its last rollup (runs other agents wrote since then count after the next, within a minute). Percentiles within 0.05 % (the rollups' histogram buckets)",
      },
      sparkline,
    },
    ['name', 'kind', 'target', 'intervalSeconds', 'status', 'window', 'sparkline'],
  ),
  FlowCounts: obj(
    Object.fromEntries(
      [
        'expected',
        'received',
        'lost',
        'inFlight',
        'sendFailed',
        'sendFailedArrived',
        'droppedLocally',
        'duplicated',
        'reordered',
        'late',
        'stale',
      ].map((k) => [k, int]),
    ),
  ),
  FlowSummary: obj(
    {
      canary: str,
      coalminer: str,
      transport: str,
      region: str,
      status,
      counts: ref('FlowCounts'),
      window: obj({
        p50: nullableNum,
        p95: nullableNum,
        p99: nullableNum,
        lossRatio: nullableNum,
        received: int,
      }),
      sparkline,
      clockOffset: obj({ seconds: num, errorSeconds: num }),
    },
    ['canary', 'coalminer', 'transport', 'region', 'status', 'counts', 'window', 'sparkline'],
  ),
  SeriesPoint: obj(
    {
      time: { type: 'number', description: 'Start of the step, Unix ms' },
      count: int,
      p1: nullableNum,
      p5: nullableNum,
      p50: nullableNum,
      p90: nullableNum,
      p95: nullableNum,
      p99: nullableNum,
      max: nullableNum,
      failures: { ...int, description: 'Probes: failed runs. Flows: pings declared lost' },
      duplicated: int,
      reordered: int,
      late: int,
      droppedLocally: {
        ...int,
        description:
          'Flows: pings that reached the coalminer but its own full buffer dropped (not in failures)',
      },
      phases: { type: 'object', additionalProperties: num, description: 'Mean seconds per phase (http)' },
      heatmap: { type: 'array', items: int },
    },
    ['time', 'count', 'p1', 'p5', 'p50', 'p90', 'p95', 'p99', 'max', 'failures'],
  ),
  Series: {
    type: 'object',
    properties: {
      from: num,
      to: num,
      step: num,
      resolution: { type: 'string', enum: ['raw', '1m', '1h'] },
      points: { type: 'array', items: ref('SeriesPoint') },
      heatmapBounds: {
        type: 'array',
        items: num,
        description: 'Heatmap bucket edges in seconds (one more than each heatmap)',
      },
    },
    required: ['from', 'to', 'step', 'resolution', 'points'],
  },
  SchedulePoint: obj({
    time: { type: 'number', description: 'Start of the step, Unix ms' },
    due: { ...int, description: 'Pings that fell due in the step' },
    attempted: { ...int, description: 'Pings published or given up on in the step (sent + send-failed)' },
    behindSchedule: {
      ...int,
      description: 'The most pings due but not yet attempted at any sample in the step (0: on schedule)',
    },
    behindScheduleSeconds: {
      ...num,
      minimum: 0,
      description: 'How far behind its schedule the canary was at worst in the step',
    },
  }),
  ScheduleSeries: obj({
    from: num,
    to: num,
    step: num,
    resolution: { type: 'string', enum: ['raw', '1m', '1h'] },
    points: { type: 'array', items: ref('SchedulePoint') },
  }),
  Matrix: obj({
    canaries: { type: 'array', items: str },
    coalminers: { type: 'array', items: obj({ name: str, region: str }) },
    cells: {
      type: 'array',
      description: 'cells[i][j]: canaries[i] -> coalminers[j], null where there is no flow',
      items: {
        type: 'array',
        items: { oneOf: [{ type: 'null' }, obj({ p95: nullableNum, lossRatio: nullableNum, status })] },
      },
    },
  }),
  AgentStatus: obj(
    {
      version: str,
      startedAt: num,
      targets: int,
      flows: int,
      canaries: {
        type: 'array',
        description: "Each canary's schedule per coalminer: due = attempted + behindSchedule",
        items: obj({
          canary: str,
          coalminer: str,
          due: int,
          attempted: int,
          sent: int,
          sendFailed: int,
          behindSchedule: int,
          behindScheduleSeconds: { ...num, minimum: 0 },
        }),
      },
      store: obj(
        {
          engine: { type: 'string', enum: ['sqlite', 'postgres', 'none'] },
          queued: int,
          written: int,
          dropped: int,
          flushes: int,
          lastError: str,
        },
        ['engine', 'queued', 'written', 'dropped', 'flushes'],
      ),
      api: obj({
        eventClients: int,
        eventClientsDropped: int,
        eventClientsRefused: int,
        rateLimited: int,
        checksRefused: int,
      }),
    },
    ['version', 'startedAt', 'targets', 'flows', 'store'],
  ),
  WhoAmI: obj({
    name: { type: 'string', description: "The token's configured name, never the token" },
    scopes: { type: 'array', items: { type: 'string', enum: ['read', 'write'] } },
  }),
  AlertState: { type: 'string', enum: ['ok', 'pending', 'firing', 'resolved'] },
  AlertRuleStatus: obj(
    {
      rule: { type: 'string', description: 'The rule name; the alertname label' },
      subject: {
        description: 'What the rule watches: a probe target, or a canary -> coalminer flow',
        oneOf: [obj({ target: str }), obj({ canary: str, coalminer: str })],
      },
      condition: { type: 'string', description: 'As a person reads it, e.g. "p95 latency > 0.25 s"' },
      datapoints: obj({ m: int, n: int }, ['m', 'n']),
      forSeconds: num,
      evaluateEverySeconds: num,
      missingData: { type: 'string', enum: ['breaching', 'notBreaching', 'ignore'] },
      state: ref('AlertState'),
      activeSince: { type: 'number', description: 'When the current pending or firing period began' },
      lastEvaluatedAt: num,
      lastValue: {
        type: 'number',
        description: 'At the last evaluation with data, in the unit of the condition',
      },
      silencedBy: {
        type: 'array',
        items: str,
        description: 'Ids of the active silences muting this rule now',
      },
      labels: { type: 'object', additionalProperties: str },
      annotations: { type: 'object', additionalProperties: str },
    },
    [
      'rule',
      'subject',
      'condition',
      'datapoints',
      'forSeconds',
      'evaluateEverySeconds',
      'missingData',
      'state',
      'silencedBy',
      'labels',
      'annotations',
    ],
  ),
  AlertHistoryEntry: obj({
    rule: str,
    from: ref('AlertState'),
    to: ref('AlertState'),
    at: { type: 'number', description: 'Unix ms of the evaluation that made the change' },
    value: { type: ['number', 'null'], description: 'The value then; null when it had no data' },
  }),
  Silence: obj({
    id: str,
    matchers: {
      type: 'object',
      additionalProperties: str,
      description:
        'Mutes every rule whose labels (alertname, target or canary and coalminer, its own) equal all of these',
    },
    startsAt: num,
    endsAt: num,
    comment: str,
    createdBy: str,
    active: { type: 'boolean', description: 'startsAt <= now < endsAt' },
  }),
  NewSilence: obj(
    {
      matchers: {
        type: 'object',
        minProperties: 1,
        maxProperties: 32,
        propertyNames: { pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$', maxLength: 128 },
        additionalProperties: { type: 'string', maxLength: 1024 },
      },
      endsAt: { type: 'integer', description: 'Unix ms, in the future, at most 90 days ahead' },
      durationSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 7_776_000 },
      comment: { type: 'string', maxLength: 1000 },
      createdBy: { type: 'string', minLength: 1, maxLength: 100, description: 'Default "api"' },
    },
    ['matchers'],
  ),
};

const timeParam = (name: 'from' | 'to', description: string): Json => ({
  name,
  in: 'query',
  required: false,
  description,
  schema: {
    oneOf: [
      { type: 'integer', minimum: 0 },
      { type: 'string', format: 'date-time' },
    ],
  },
});
const seriesParams: Json[] = [
  timeParam('from', 'Start, Unix ms or ISO 8601 (default: to - 1 h)'),
  timeParam('to', 'End, Unix ms or ISO 8601 (default: now)'),
  {
    name: 'step',
    in: 'query',
    required: false,
    description:
      'Step: ms or 30s, 5m, 1h, 1d; at least 1 s and at most 2000 points (default: about 300 points)',
    schema: { type: 'string', pattern: '^[0-9]+(ms|s|m|h|d)?$' },
  },
];
const pathParam = (name: string, description: string): Json => ({
  name,
  in: 'path',
  required: true,
  description,
  schema: { type: 'string' },
});

const errorResponse = (description: string): Json => ({
  description,
  content: { 'application/json': { schema: ref('Error') } },
});
const json = (description: string, schema: Json): Json => ({
  description,
  content: { 'application/json': { schema } },
});
const common: Record<string, Json> = {
  '400': errorResponse('Bad query or body; the message says which parameter and why'),
  '401': errorResponse('No token or a wrong one (WWW-Authenticate: Bearer)'),
  '403': errorResponse('The token lacks the scope'),
  '429': errorResponse('Too many requests from this client; see Retry-After'),
};
const read: Json[] = [{ bearer: ['read'] }, { queryToken: ['read'] }, { cookieToken: ['read'] }];
const write: Json[] = [{ bearer: ['write'] }, { cookieToken: ['write'] }];
const noAlerting = errorResponse(
  'Alerting is not configured on this agent (code alerting_not_configured): add an `alerting:` section',
);

export function openApiDocument(version: string): OpenApiDocument {
  return {
    openapi: '3.1.0',
    info: {
      title: 'coalmine agent API',
      version,
      description:
        'Probe targets, canary -> coalminer flows, their history, alert rules and silences, and live ' +
        'events. Times are Unix ms, latencies seconds, ratios 0..1. Every error is ' +
        '{"error": {"code", "message"}}.',
    },
    servers: [{ url: '/api/v1' }],
    security: read,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer TOKEN' },
        queryToken: {
          type: 'apiKey',
          in: 'query',
          name: 'token',
          description: 'On GET only (EventSource cannot set headers)',
        },
        cookieToken: { type: 'apiKey', in: 'cookie', name: 'coalmine_token' },
      },
      schemas,
    },
    paths: {
      '/targets': {
        get: {
          operationId: 'listTargets',
          summary: 'Every probe target with its status, last run, last-hour window and sparkline',
          responses: {
            '200': json('Targets', obj({ targets: { type: 'array', items: ref('TargetSummary') } })),
            ...common,
          },
        },
      },
      '/flows': {
        get: {
          operationId: 'listFlows',
          summary: 'Every canary -> coalminer flow with counts, last-hour window and sparkline',
          responses: {
            '200': json('Flows', obj({ flows: { type: 'array', items: ref('FlowSummary') } })),
            ...common,
          },
        },
      },
      '/targets/{name}/series': {
        get: {
          operationId: 'targetSeries',
          summary: "A target's latency percentiles, counts and failures per step",
          parameters: [pathParam('name', 'A configured target name'), ...seriesParams],
          responses: {
            '200': json('Series', ref('Series')),
            '404': errorResponse('No such target'),
            '503': errorResponse('The agent runs without a results store'),
            ...common,
          },
        },
      },
      '/flows/{canary}/{coalminer}/series': {
        get: {
          operationId: 'flowSeries',
          summary: "A flow's latency percentiles, loss, duplicates and reordering per step",
          parameters: [
            pathParam('canary', 'Canary name'),
            pathParam('coalminer', 'Coalminer name'),
            ...seriesParams,
          ],
          responses: {
            '200': json('Series', ref('Series')),
            '404': errorResponse('No such flow'),
            '503': errorResponse('The agent runs without a results store'),
            ...common,
          },
        },
      },
      '/flows/{canary}/{coalminer}/schedule': {
        get: {
          operationId: 'flowSchedule',
          summary:
            "The canary's side of a flow per step: pings due, attempted, and how far behind schedule " +
            '(due = attempted + behind schedule); recorded by the agent that runs the canary',
          parameters: [
            pathParam('canary', 'Canary name'),
            pathParam('coalminer', 'Coalminer name'),
            ...seriesParams,
          ],
          responses: {
            '200': json('Schedule series', ref('ScheduleSeries')),
            '404': errorResponse("No such flow among this agent's coalminers and canaries"),
            '503': errorResponse('The agent runs without a results store'),
            ...common,
          },
        },
      },
      '/matrix': {
        get: {
          operationId: 'matrix',
          summary: 'Canaries by coalminers: p95 and loss of each flow over the last hour',
          responses: { '200': json('Matrix', ref('Matrix')), ...common },
        },
      },
      '/check': {
        post: {
          operationId: 'checkNow',
          summary: 'Run configured targets now (all, or those named); never an address from the request',
          security: write,
          parameters: [
            {
              name: 'target',
              in: 'query',
              required: false,
              description: 'A configured target name; repeat for several',
              schema: { type: 'string' },
            },
          ],
          requestBody: {
            required: false,
            content: {
              'application/json': {
                schema: obj({ targets: { type: 'array', items: str, maxItems: 1000 } }, []),
              },
            },
          },
          responses: {
            '200': json('Results', obj({ results: { type: 'array', items: ref('ProbeReport') } })),
            '404': errorResponse('A name is not a configured target; the message lists the configured ones'),
            '413': errorResponse('Body over the size limit'),
            '415': errorResponse('Body is not application/json'),
            ...common,
          },
        },
      },
      '/events': {
        get: {
          operationId: 'events',
          summary:
            'Server-sent events: hello, then probe (ProbeReport), flow (FlowSummary) and alert ' +
            '(AlertHistoryEntry, on each state change of a rule); `: keepalive` every 15 s',
          responses: {
            '200': {
              description: 'An event stream. A client that falls behind is disconnected and should reconnect',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            '503': errorResponse('Too many streams open'),
            ...common,
          },
        },
      },
      '/export': {
        get: {
          operationId: 'exportResults',
          summary: 'Every raw probe result of a target in a range, streamed as CSV or JSON lines',
          parameters: [
            { name: 'target', in: 'query', required: true, schema: { type: 'string' } },
            timeParam('from', 'Start, Unix ms or ISO 8601 (default: to - 24 h)'),
            timeParam('to', 'End, Unix ms or ISO 8601 (default: now)'),
            {
              name: 'format',
              in: 'query',
              required: false,
              description: 'Default jsonl',
              schema: { type: 'string', enum: ['csv', 'jsonl'] },
            },
          ],
          responses: {
            '200': {
              description:
                "CSV with a header row (time, time_ms, name, kind, target, ok, duration_seconds, error_code, error_message, one <phase>_seconds column per phase, other_phases, values; the same as `coalmine export`; text that would start a spreadsheet formula is prefixed with '), or one ProbeReport JSON object per line",
              content: {
                'text/csv': { schema: { type: 'string' } },
                'application/x-ndjson': { schema: ref('ProbeReport') },
              },
            },
            '404': errorResponse('No such target'),
            '503': errorResponse('The agent runs without a results store'),
            ...common,
          },
        },
      },
      '/status': {
        get: {
          operationId: 'status',
          summary: 'Agent version, uptime, counts, store writer and API statistics',
          responses: { '200': json('Status', ref('AgentStatus')), ...common },
        },
      },
      '/whoami': {
        get: {
          operationId: 'whoami',
          summary: 'The name and scopes of the token this request used',
          responses: { '200': json('The token', ref('WhoAmI')), ...common },
        },
      },
      '/alerts': {
        get: {
          operationId: 'listAlerts',
          summary: 'Every configured alert rule with its state, last value and the silences muting it',
          responses: {
            '200': json('Rules', obj({ alerts: { type: 'array', items: ref('AlertRuleStatus') } })),
            '404': noAlerting,
            ...common,
          },
        },
      },
      '/alerts/history': {
        get: {
          operationId: 'alertHistory',
          summary: 'State changes of alert rules, newest first',
          parameters: [
            {
              name: 'rule',
              in: 'query',
              required: false,
              description: 'Only this rule (404 when no rule has that name)',
              schema: { type: 'string' },
            },
            {
              name: 'limit',
              in: 'query',
              required: false,
              description: 'At most this many; default 100',
              schema: { type: 'integer', minimum: 1, maximum: 1000 },
            },
          ],
          responses: {
            '200': json('History', obj({ history: { type: 'array', items: ref('AlertHistoryEntry') } })),
            '404': errorResponse('No rule has that name, or alerting is not configured'),
            ...common,
          },
        },
      },
      '/silences': {
        get: {
          operationId: 'listSilences',
          summary: 'Active silences and those that ended in the last 24 h, newest first',
          responses: {
            '200': json('Silences', obj({ silences: { type: 'array', items: ref('Silence') } })),
            '404': noAlerting,
            ...common,
          },
        },
        post: {
          operationId: 'createSilence',
          summary: 'Mute the notifications (not the evaluation) of matching rules until endsAt',
          security: write,
          requestBody: {
            required: true,
            description: 'Exactly one of endsAt and durationSeconds',
            content: { 'application/json': { schema: ref('NewSilence') } },
          },
          responses: {
            '201': json('The silence', ref('Silence')),
            '404': noAlerting,
            '413': errorResponse('Body over the size limit'),
            '415': errorResponse('Body is not application/json'),
            ...common,
          },
        },
      },
      '/silences/{id}': {
        delete: {
          operationId: 'expireSilence',
          summary: 'End a silence now; it stays listed, inactive, for 24 h',
          security: write,
          parameters: [pathParam('id', 'The silence id')],
          responses: {
            '204': { description: 'Ended' },
            '404': errorResponse('No silence with that id, or alerting is not configured'),
            ...common,
          },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'openapi',
          summary: 'This document',
          security: [],
          responses: { '200': json('OpenAPI 3.1 document', { type: 'object' }), '429': common['429']! },
        },
      },
    },
  };
}
