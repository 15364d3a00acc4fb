#!/usr/bin/env node
// dist/bundle: the CLI as a few minified files (scripts/bundle.mjs), which hold less memory than tsc's
// 262 modules do; `npm run build` makes both.
import { leanHeapAtStart } from '../dist/bundle/heap.js';

// Before the CLI's modules load: loading them is what would grow V8's young generation.
leanHeapAtStart(process.argv, process.execArgv, process.env.NODE_OPTIONS);
const { main } = await import('../dist/bundle/main.js');

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exitCode = 1;
  },
);
