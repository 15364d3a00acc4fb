#!/usr/bin/env node
import { leanHeapAtStart } from '../dist/core/heap.js';

// Before the CLI's modules load: loading them is what would grow V8's young generation.
leanHeapAtStart(process.argv, process.execArgv, process.env.NODE_OPTIONS);
const { main } = await import('../dist/cli/main.js');

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exitCode = 1;
  },
);
