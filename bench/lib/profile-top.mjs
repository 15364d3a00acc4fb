// @ts-check
/**
 * Self time by function in V8 .cpuprofile files (what `--cpu-prof` writes), heaviest first:
 *
 *   node bench/lib/profile-top.mjs /tmp/prof/CPU.*.cpuprofile [--top 40] [--by file]
 *
 * One table per file: self ms, share of the profile's samples, function and where it is (file:line, the
 * path shortened to the part after node_modules/ or dist/). `--by file` sums by file instead, which shows
 * how the time splits between our code, each client library and Node itself.
 */
import { readFileSync } from 'node:fs';

const argv = process.argv.slice(2);
const topAt = argv.indexOf('--top');
const top = topAt >= 0 ? Number(argv[topAt + 1]) : 40;
const byFile = argv.includes('--by') && argv[argv.indexOf('--by') + 1] === 'file';
const files = argv.filter((a, i) => !a.startsWith('--') && argv[i - 1] !== '--top' && argv[i - 1] !== '--by');

/** @param {string} url */
function shortUrl(url) {
  if (!url) return '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  const bench = url.lastIndexOf('/bench/');
  if (bench >= 0) return url.slice(bench + 1);
  return url.replace(/^file:\/\//, '');
}

for (const file of files) {
  /** @type {{ nodes: { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }} */
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  /** @type {Map<number, number>} node id → µs */
  const self = new Map();
  for (let i = 0; i < prof.samples.length; i++) {
    const id = /** @type {number} */ (prof.samples[i]);
    self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i + 1] ?? prof.timeDeltas[i] ?? 0));
  }
  /** @type {Map<string, number>} */
  const agg = new Map();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const f = n.callFrame;
    const where = shortUrl(f.url);
    const key = byFile ? where : `${f.functionName || '(anonymous)'}  ${where}:${f.lineNumber + 1}`;
    agg.set(key, (agg.get(key) ?? 0) + us);
    total += us;
  }
  const rows = [...agg].sort((a, b) => b[1] - a[1]).slice(0, top);
  process.stdout.write(`\n${file}: ${(total / 1e3).toFixed(0)} ms sampled\n`);
  for (const [k, us] of rows)
    process.stdout.write(
      `${(us / 1e3).toFixed(1).padStart(9)} ms ${((us / total) * 100).toFixed(1).padStart(5)}%  ${k}\n`,
    );
}
