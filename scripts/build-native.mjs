#!/usr/bin/env node
// Builds the native module (build/Release/coalmine_icmp.node: ICMP sockets, TCP_INFO for kernel-timed
// TCP connects, and the log line of a fatal signal such as SIGBUS) with node-gyp.
// It runs as the `install` script, so it never fails the install: when the build cannot run it prints
// one warning line saying why and exits 0. ICMP probes then report how to fix it instead of running,
// TCP/HTTP probes time their connect phase in user space, and a fatal signal kills without a log line.
//   --verbose  show node-gyp's output        --strict  exit 1 when the build fails (for CI)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const verbose = process.argv.includes('--verbose');
const strict = process.argv.includes('--strict');
const output = 'build/Release/coalmine_icmp.node';

function warn(reason) {
  console.warn(
    `coalmine: warning: ICMP probes will be unavailable: ${reason}. ` +
      `Fix that, then run \`npm run build:native\` (add \`-- --verbose\` to see the compiler output).`,
  );
  process.exit(strict ? 1 : 0);
}

if (process.platform !== 'linux') {
  warn(`the native ICMP module supports Linux only, and this is ${process.platform}`);
}

/** node-gyp's CLI: npm tells install scripts where its own copy is; else a local or global one. */
function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) {
    candidates.push(
      join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    );
  }
  try {
    candidates.push(createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed locally
  }
  const prefix = resolve(dirname(process.execPath), '..');
  candidates.push(
    join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  );
  return candidates.find((p) => existsSync(p));
}

const nodeGyp = findNodeGyp();
if (!nodeGyp) warn('node-gyp was not found (it ships with npm; is npm installed?)');

const env = { ...process.env };
// Use the headers of the running Node.js when its install has them (official tarballs and distro
// packages do), so the build works offline instead of downloading them.
const nodePrefix = resolve(dirname(process.execPath), '..');
if (!env.npm_config_nodedir && existsSync(join(nodePrefix, 'include', 'node', 'node_api.h'))) {
  env.npm_config_nodedir = nodePrefix;
}

const run = spawnSync(process.execPath, [nodeGyp, 'rebuild'], {
  cwd: root,
  env,
  encoding: 'utf8',
  stdio: verbose ? 'inherit' : 'pipe',
  maxBuffer: 16 * 1024 * 1024,
});

if (run.status === 0 && existsSync(join(root, output))) {
  console.log(`coalmine: built the native ICMP module (${output})`);
  process.exit(0);
}

const log = `${run.stdout ?? ''}\n${run.stderr ?? ''}`;
warn(`the native ICMP module did not build (${explain(log, run.error)})`);

/** Turns node-gyp's log into the one thing the user must install or set. */
function explain(log, spawnError) {
  // node-gyp's info lines mention Python and make even when they were found: judge by the rest.
  const text = log
    .split('\n')
    .filter((l) => !/^gyp (info|http)/.test(l))
    .join('\n');
  if (spawnError) return `could not run node-gyp: ${spawnError.message}`;
  if (/Could not find any Python|find Python.*(ERR|not found)|python3?: (command )?not found/i.test(text))
    return 'Python 3 was not found';
  if (/(^|\s)make: (command )?not found|spawn make ENOENT|not found: make/i.test(text)) {
    return 'make was not found';
  }
  if (
    /(cc|gcc|clang|g\+\+|c\+\+): (command )?not found|spawn (cc|gcc|clang) ENOENT|No such file or directory.*\b(cc|gcc)\b/i.test(
      text,
    )
  ) {
    return 'no C compiler was found (install gcc or clang)';
  }
  if (/node_api\.h|uv\.h/.test(text) && /No such file/i.test(text)) {
    return 'the Node.js headers are missing: set npm_config_nodedir to a Node.js install that has include/node';
  }
  if (/ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|download/i.test(text)) {
    return 'node-gyp could not download the Node.js headers: set npm_config_nodedir to a Node.js install that has include/node';
  }
  const line = text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /error/i.test(l) && !/^gyp info/.test(l));
  return line ? line.slice(0, 200) : `node-gyp exited with status ${run.status}`;
}
