import { redactText } from '../../core/log.js';
import { defineStoreEngine } from '../engine.js';

export interface PostgresSpec {
  engine: 'postgres';
  url: string;
  schema?: string;
}

const EXPECTED = '(expected postgres://user@host:5432/database)';

/** `postgres://...` or `postgresql://...`, optionally `?schema=NAME`. */
function parse(url: string): PostgresSpec | string | undefined {
  if (!/^postgres(ql)?:\/\//i.test(url)) return undefined;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `is not a valid URL ${EXPECTED}`;
  }
  if (!u.hostname) return `has no host ${EXPECTED}`;
  const schema = u.searchParams.get('schema') ?? undefined;
  u.searchParams.delete('schema');
  return schema === undefined
    ? { engine: 'postgres', url: u.toString() }
    : { engine: 'postgres', url: u.toString(), schema };
}

const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: 'connection refused: is it running?',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name does not resolve now',
};

/** Says where PostgreSQL was looked for and what to do, for a server that cannot be reached. */
function openProblem(spec: PostgresSpec, err: Error & { code?: unknown }): string {
  const code = typeof err.code === 'string' ? err.code : undefined;
  const unreachable = code === undefined ? undefined : UNREACHABLE[code];
  if (unreachable !== undefined) {
    const u = new URL(spec.url);
    return `cannot connect to PostgreSQL at ${u.hostname}:${u.port || '5432'} (${unreachable}): start it there, fix store.url, or use sqlite:PATH`;
  }
  const why = code === '3D000' ? `${err.message} (create it with createdb)` : err.message || String(err);
  return `cannot connect: ${why}`;
}

export const postgresEngine = defineStoreEngine<PostgresSpec>({
  engine: 'postgres',
  label: 'PostgreSQL',
  forms: 'postgres://user@host:5432/database',
  parse,
  shown: (spec) => redactText(spec.url, 200),
  async open(spec, opts) {
    // The engine's module (and pg) loads only when a PostgreSQL store opens.
    const { PostgresBackend } = await import('./postgres-store.js');
    return PostgresBackend.open(spec.url, {
      ...(spec.schema ? { schema: spec.schema } : {}),
      ...(opts.poolSize ? { max: opts.poolSize } : {}),
    });
  },
  openProblem,
});
