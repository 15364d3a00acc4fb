import { Readable } from 'node:stream';
import { z } from 'zod';
import type { ExportRecord } from '../context.js';
import { exportCsvHeader, exportCsvLine, exportJsonLine } from '../export.js';
import { streamHeaders } from '../http.js';
import { badQuery, parseRange } from '../query.js';
import { NO_STORE, query, requireStore, requireTarget, route, searchParams, timeParam } from '../route.js';
import { responseSchemas } from '../schemas.js';

const HOUR_MS = 3_600_000;

export const exportRoutes = [
  route({
    method: 'GET',
    path: '/export',
    scope: 'read',
    operationId: 'exportResults',
    summary: 'Every raw probe result of a target in a range, streamed as CSV or JSON lines',
    schema: {
      querystring: query({
        target: z.string().describe('A configured target name (required)').optional(),
        from: timeParam('from', 'Start, Unix ms or ISO 8601 (default: to - 24 h)'),
        to: timeParam('to', 'End, Unix ms or ISO 8601 (default: now)'),
        format: z
          .enum(['csv', 'jsonl'], {
            error: (iss) =>
              `"format" must be csv or jsonl, not ${JSON.stringify(String(iss.input).slice(0, 40))}`,
          })
          .optional()
          .describe('Default jsonl'),
      }),
      response: {
        200: () => ({
          description:
            "CSV with a header row (time, time_ms, name, kind, target, ok, duration_seconds, error_code, error_message, one <phase>_seconds column per phase, other_phases, values; the same as `coalmine export`; text that would start a spreadsheet formula is prefixed with '), or one ExportRecord JSON object per line",
          content: { 'text/csv': null, 'application/x-ndjson': responseSchemas().exportRecord },
        }),
      },
    },
    errors: { 404: 'No such target', 503: NO_STORE },
    handle: async ({ query: q, reply, deps, now }) => {
      const name = q.target;
      if (name === undefined)
        throw badQuery('"target" is required: export?target=NAME&from=MS&to=MS&format=csv|jsonl');
      const format = q.format ?? 'jsonl';
      const params = searchParams(q);
      const { from, to } = parseRange(params, { now, defaultRangeMs: 24 * HOUR_MS });
      requireTarget(deps.ctx, name);
      const store = requireStore(deps.ctx);
      const filename = `coalmine-${name.replace(/[^A-Za-z0-9_.-]/g, '_')}-${from}-${to}.${format}`;
      await reply
        .code(200)
        .headers(
          streamHeaders(
            format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
            { 'content-disposition': `attachment; filename="${filename}"` },
          ),
        )
        .send(Readable.from(lines(store.exportProbes(name, from, to), format), { highWaterMark: 1 }));
      return undefined;
    },
  }),
];

/** In 64 KiB batches; the client leaving destroys the stream, which ends the query. */
async function* lines(rows: AsyncIterable<ExportRecord>, format: 'csv' | 'jsonl'): AsyncGenerator<string> {
  let batch = format === 'csv' ? exportCsvHeader() : '';
  for await (const r of rows) {
    batch += format === 'csv' ? exportCsvLine(r) : exportJsonLine(r);
    if (batch.length >= 64 * 1024) {
      yield batch;
      batch = '';
    }
  }
  yield batch;
}
