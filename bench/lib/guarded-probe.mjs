// @ts-check
/**
 * Stands in for one probe kind's module (see probe-guard-hook.mjs): re-exports the real definition, or,
 * when it cannot be loaded, a definition that says why and fails every run with `unsupported`.
 */
import { z } from 'zod';

const params = new URL(import.meta.url).searchParams;
const kind = params.get('kind') ?? 'unknown';
const real = params.get('real') ?? '';

/** @type {unknown} */
let definition;
try {
  definition = (await import(real)).default;
  if (!definition) throw new Error(`${real} has no default export`);
} catch (err) {
  const e = /** @type {{ code?: string, message?: string }} */ (err);
  const reason =
    e?.code === 'ERR_MODULE_NOT_FOUND'
      ? `the build has no ${kind} probe yet (${String(e.message).split('\n')[0]})`
      : `the ${kind} probe failed to load: ${String(e?.message ?? err).split('\n')[0]}`;
  definition = {
    kind,
    summary: `unavailable in this build: ${reason}`,
    targetForm: 'anything',
    options: z.strictObject({}),
    /** Marker the bench reads to print the line as unavailable. */
    unavailable: reason,
    validateTarget: () => undefined,
    run: async () => ({
      ok: false,
      durationNs: 0n,
      phases: {},
      error: { code: 'unsupported', message: reason },
    }),
  };
}

export default definition;
