// @ts-check
/**
 * Module resolve hook (registered by load-dist.mjs): every `./<kind>/index.js` that dist/probes/registry.js
 * imports is loaded through guarded-probe.mjs, so a probe kind that is missing from the build or fails
 * to load (another engineer mid-edit, a native addon not built) shows up as "unavailable" in the bench
 * instead of taking every other kind down with it. The real module, when it loads, is passed through
 * unchanged.
 */

/**
 * @param {string} specifier
 * @param {{ parentURL?: string }} context
 * @param {(specifier: string, context: object) => Promise<{ url: string }>} next
 */
export async function resolve(specifier, context, next) {
  const m = /^\.\/([a-z0-9]+)\/index\.js$/.exec(specifier);
  if (m && context.parentURL?.endsWith('/dist/probes/registry.js')) {
    const real = new URL(specifier, context.parentURL).href;
    const guard = new URL('./guarded-probe.mjs', import.meta.url);
    guard.searchParams.set('kind', /** @type {string} */ (m[1]));
    guard.searchParams.set('real', real);
    return { url: guard.href, shortCircuit: true };
  }
  return next(specifier, context);
}
