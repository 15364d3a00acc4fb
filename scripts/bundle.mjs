// @ts-check
/**
 * Bundles the compiled CLI (dist/cli/main.js, after tsc) into dist/bundle/, which bin/coalmine.js runs.
 *
 * Why: each ES module Node loads costs memory of its own beyond its code (module records, scopes,
 * source, the loader's bookkeeping). The agent loaded 262 of them, 95 of them zod's (its every locale),
 * and a long-running agent held about 5 MB more than the same code in a few files does (bench/probes.mjs,
 * section memory). The bundle keeps the lazy loading the CLI has (each command, store engine and
 * transport is its own chunk, loaded when used) and is minified without renaming, so stack traces
 * still name our functions.
 *
 * What stays outside: Node's built-ins, the native addon better-sqlite3, and the messaging clients (each
 * loaded only by its transport, and ioredis's connector is required by path at run time).
 */
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown } from 'rolldown';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/bundle');

/** Packages inlined into the bundle: what every command loads. Anything else in node_modules stays external. */
const INLINE = new Set(['zod', 'yaml', 'commander', 'prom-client', 'tdigest', 'bintrees']);

/** @param {string} id */
function external(id) {
  if (id.startsWith('node:') || id.startsWith('.') || id.startsWith('/')) return id.startsWith('node:');
  const name = id.startsWith('@') ? id.split('/').slice(0, 2).join('/') : id.split('/')[0];
  return !INLINE.has(/** @type {string} */ (name));
}

await rm(out, { recursive: true, force: true });
const bundle = await rolldown({
  cwd: root,
  input: {
    main: join(root, 'dist/cli/main.js'),
    heap: join(root, 'dist/core/heap.js'),
    // A worker thread's script (src/probes/workers/pool.ts finds it beside its own chunk).
    'probe-worker': join(root, 'dist/probes/workers/probe-worker.js'),
  },
  platform: 'node',
  external,
  logLevel: 'warn',
});
await bundle.write({
  dir: out,
  format: 'esm',
  entryFileNames: '[name].js',
  // Every file one folder below dist/, as tsc's output is: paths found from import.meta (the dashboard's
  // dist/web in src/agent/stack.ts) then resolve the same from either.
  chunkFileNames: '[name]-[hash].js',
  minify: { compress: true, mangle: false, codegen: { removeWhitespace: true } },
});
await bundle.close();
