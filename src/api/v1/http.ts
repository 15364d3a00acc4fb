import type { FastifyReply } from 'fastify';

/** An error the API answers with `{ error: { code, message } }` and this status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

const COMMON_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
} as const;

/** The one error shape of every route, the API's and the agent's. */
export function sendError(reply: FastifyReply, e: HttpError): FastifyReply {
  return reply
    .code(e.status)
    .headers({ ...COMMON_HEADERS, ...e.headers })
    .type('application/json; charset=utf-8')
    .send(JSON.stringify({ error: { code: e.code, message: e.message } }));
}

/** Headers of an answer written as a stream (its length unknown). */
export function streamHeaders(
  contentType: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return { ...COMMON_HEADERS, 'content-type': contentType, ...extra };
}

/** The answer to a declared or actual body over the limit; the connection is closed after it. */
export function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'payload_too_large', `request body is larger than ${limit} bytes`, {
    connection: 'close',
  });
}
