import type { ApiRoute } from '../route.js';
import { alertRoutes } from './alerts.js';
import { checkRoutes } from './check.js';
import { eventRoutes } from './events.js';
import { exportRoutes } from './export.js';
import { flowRoutes } from './flows.js';
import { matrixRoutes } from './matrix.js';
import { openApiRoutes } from './openapi.js';
import { silenceRoutes } from './silences.js';
import { statusRoutes } from './status.js';
import { targetRoutes } from './targets.js';

/** Every route of /api/v1: one file per resource. */
export const apiV1Routes: readonly ApiRoute[] = [
  ...targetRoutes,
  ...flowRoutes,
  ...matrixRoutes,
  ...checkRoutes,
  ...eventRoutes,
  ...exportRoutes,
  ...statusRoutes,
  ...alertRoutes,
  ...silenceRoutes,
  ...openApiRoutes,
];
