import type { FastifyServerOptions, FastifyTypeProvider } from 'fastify';
import type { z } from 'zod';

/**
 * fastify's type provider for zod: a route's request parts are typed by its schemas. (A dozen lines of
 * our own rather than fastify-type-provider-zod, which needs @fastify/swagger beside it: the document is
 * generated from the same schemas in openapi.ts.)
 */
export interface ZodTypeProvider extends FastifyTypeProvider {
  validator: this['schema'] extends z.ZodType ? z.output<this['schema']> : unknown;
  serializer: this['schema'] extends z.ZodType ? z.input<this['schema']> : unknown;
}

/** A request part that failed its zod schema; the API's error handler words it. */
export class RequestValidationError extends Error {
  readonly statusCode = 400;
  constructor(readonly issues: z.core.$ZodIssue[]) {
    super(issues[0]?.message ?? 'invalid request');
    this.name = 'RequestValidationError';
  }
}

/**
 * Validation by zod and no response serializer compiled from schemas. Given to fastify as the
 * compilers' factory, so neither ajv nor fast-json-stringify is ever loaded.
 */
export const zodSchemaController = {
  compilersFactory: {
    buildValidator:
      () =>
      ({ schema, httpPart }: { schema: unknown; httpPart?: string }) => {
        const s = schema as z.ZodType;
        return (data: unknown) => {
          // fastify hands a missing body over as null; the schemas say undefined (no body).
          const r = s.safeParse(httpPart === 'body' && data === null ? undefined : data);
          return r.success ? { value: r.data } : { error: new RequestValidationError(r.error.issues) };
        };
      },
    buildSerializer: () => () => (data: unknown) => JSON.stringify(data),
  },
  // fastify's types know only ajv-shaped compilers; these follow its call contract.
} as unknown as NonNullable<FastifyServerOptions['schemaController']>;
