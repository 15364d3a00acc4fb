import { z } from 'zod';
import { route } from '../route.js';

export const openApiRoutes = [
  route({
    method: 'GET',
    path: '/openapi.json',
    scope: null,
    operationId: 'openapi',
    summary: 'This document',
    schema: { response: { 200: () => z.object({ openapi: z.literal('3.1.0') }).loose() } },
    handle: ({ deps }) => deps.openapi(),
  }),
];
