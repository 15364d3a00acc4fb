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
const INLINE = new Set([
  ...['zod', 'yaml', 'commander', 'prom-client', 'tdigest', 'bintrees'],
  // fastify and what it loads to serve (its validators, serializers and logger load only when used and
  // stay outside: the agent gives its routes zod's and no logger).
  ...['fastify', 'avvio', 'find-my-way', 'ret', 'semver', 'fast-querystring', 'fast-json-stringify', 'fastq'],
  ...['reusify', '@fastify/error', 'process-warning', 'toad-cache', 'rfdc', '@fastify/proxy-addr'],
  ...['@fastify/forwarded', 'ipaddr.js', 'secure-json-parse', 'fast-decode-uri-component', 'safe-regex2'],
  ...['fast-deep-equal', 'abstract-logging'],
]);

/**
 * Modules a package requires at load but uses only for features coalmine never turns on, handed a
 * stand-in that loads the real module on first use (the same object if anything ever asks):
 * - prom-client requires @opentelemetry/api (51 modules, 2-4 MB of an agent's RSS) for exemplars;
 * - fastify requires node:http2 (about 2.3 MB) for HTTP/2 servers; ours serves HTTP/1.1.
 * @type {Record<string, (importer: string) => boolean>}
 */
const LAZY = {
  '@opentelemetry/api': () => true,
  'node:http2': (importer) => importer.includes('/node_modules/fastify/'),
};
const LAZY_PREFIX = '\0lazy:';

/** Whether `importer`'s require of `id` gets the stand-in (never the stand-in's own require). */
const lazyFor = (/** @type {string} */ id, /** @type {string | undefined} */ importer) =>
  importer !== undefined && !importer.startsWith(LAZY_PREFIX) && (LAZY[id]?.(importer) ?? false);

/** @type {import('rolldown').Plugin} */
const lazyRequires = {
  name: 'lazy-requires',
  resolveId(id, importer) {
    return lazyFor(id, importer) ? LAZY_PREFIX + id : undefined;
  },
  load(id) {
    if (!id.startsWith(LAZY_PREFIX)) return undefined;
    const real = JSON.stringify(id.slice(LAZY_PREFIX.length));
    return `let real;\nmodule.exports = new Proxy({}, { get(_, key) { real ??= require(${real}); return real[key]; } });\n`;
  },
};

/** @param {string} id @param {string | undefined} importer */
function external(id, importer) {
  // A lazy module's stand-in is bundled; the stand-in's own require of it stays outside.
  if (lazyFor(id, importer)) return false;
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
  plugins: [lazyRequires],
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
