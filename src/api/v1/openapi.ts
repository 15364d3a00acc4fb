/**
 * The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json: generated from the routes and
 * their zod schemas (z.toJSONSchema, JSON Schema 2020-12 as OpenAPI 3.1 uses), so it cannot drift from
 * what the routes check and answer. Built on the first request for it, not at start.
 */
import { z } from 'zod';
import { responseSchemas } from './schemas.js';
import type { ApiRoute, StreamedBody } from './route.js';
import { eventSchemas } from './routes/events.js';
import { apiV1Routes } from './routes/index.js';

type Json = Record<string, unknown>;

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description: string };
  paths: Record<string, Record<string, { operationId: string; security?: unknown[] } & Json>>;
  components: { schemas: Record<string, Json> } & Json;
  [key: string]: unknown;
}

const read = [{ bearer: ['read'] }, { queryToken: ['read'] }, { cookieToken: ['read'] }];
const write = [{ bearer: ['write'] }, { cookieToken: ['write'] }];

const COMMON_ERRORS: Record<number, string> = {
  400: 'Bad query or body; the message says which parameter and why',
  401: 'No token or a wrong one (WWW-Authenticate: Bearer)',
  403: 'The token lacks the scope',
  429: 'Too many requests from this client; see Retry-After',
};

/** Turns zod schemas into JSON Schema, collecting every named one under components.schemas. */
class SchemaWriter {
  readonly components: Record<string, Json> = {};

  constructor(private readonly io: 'input' | 'output') {}

  write(schema: z.ZodType): Json {
    const json = z.toJSONSchema(schema, { io: this.io, unrepresentable: 'any' }) as Json;
    const defs = (json.$defs ?? {}) as Record<string, Json>;
    delete json.$defs;
    delete json.$schema;
    for (const [id, def] of Object.entries(defs)) this.components[id] = relink(def);
    return relink(json);
  }
}

/** $refs from zod's "#/$defs/X" to the document's "#/components/schemas/X". */
function relink(json: Json): Json {
  return JSON.parse(JSON.stringify(json).replaceAll('"#/$defs/', '"#/components/schemas/')) as Json;
}

const errorBody = (out: SchemaWriter, description: string): Json => ({
  description,
  content: { 'application/json': { schema: out.write(responseSchemas().error) } },
});

function responses(r: ApiRoute, out: SchemaWriter): Json {
  const answers: Json = {};
  for (const [status, lazy] of Object.entries(r.schema.response)) {
    const body = lazy?.() ?? null;
    if (body === null) answers[status] = { description: 'Done; no body' };
    else if (body instanceof z.ZodType)
      answers[status] = { description: 'OK', content: { 'application/json': { schema: out.write(body) } } };
    else {
      const streamed = body as StreamedBody;
      answers[status] = {
        description: streamed.description,
        content: Object.fromEntries(
          Object.entries(streamed.content).map(([type, s]) => [
            type,
            { schema: s === null ? { type: 'string' } : out.write(s) },
          ]),
        ),
      };
    }
  }
  const errors = { ...(r.scope === null ? {} : COMMON_ERRORS), ...r.errors };
  for (const [status, description] of Object.entries(errors)) answers[status] = errorBody(out, description);
  return answers;
}

function parameters(r: ApiRoute, input: SchemaWriter): Json[] {
  const list: Json[] = [];
  for (const [where, schema] of [
    ['path', r.schema.params],
    ['query', r.schema.querystring],
  ] as const) {
    if (!schema) continue;
    for (const [name, field] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
      if (name === 'token') continue; // the queryToken security scheme
      const json = input.write(field);
      const description = json.description;
      delete json.description;
      list.push({
        name,
        in: where,
        required: where === 'path' || !field.safeParse(undefined).success,
        ...(description !== undefined ? { description } : {}),
        schema: json,
      });
    }
  }
  return list;
}

export function openApiDocument(version: string, routes: readonly ApiRoute[] = apiV1Routes): OpenApiDocument {
  const output = new SchemaWriter('output');
  const input = new SchemaWriter('input');
  const paths: OpenApiDocument['paths'] = {};
  for (const r of routes) {
    const op: { operationId: string; security?: unknown[] } & Json = {
      operationId: r.operationId,
      summary: r.summary,
    };
    if (r.scope === null) op.security = [];
    else if (r.scope === 'write') op.security = write;
    const params = parameters(r, input);
    if (params.length > 0) op.parameters = params;
    if (r.schema.body) {
      const body = r.schema.body;
      op.requestBody = {
        required: !body.safeParse(undefined).success,
        content: { 'application/json': { schema: input.write(body) } },
      };
    }
    op.responses = responses(r, output);
    if (r.operationId === 'events') {
      op['x-events'] = Object.fromEntries(
        Object.entries(eventSchemas()).map(([name, s]) => [name, output.write(s)]),
      );
    }
    (paths[r.path] ??= {})[r.method.toLowerCase()] = op;
  }
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
      // Request bodies are described as they are sent, answers as they are built: one name, one shape.
      schemas: { ...input.components, ...output.components },
    },
    paths,
  };
}
