// @ts-check
/**
 * Child process of store-durability.test.ts: ingests probe results into a SQLite store through the
 * BatchedWriter from dist/ as fast as a busy agent would, and reports on stdout, as JSON lines, how many
 * it pushed and how many the writer has flushed (committed). The test kills it with SIGKILL mid-stream.
 *
 *   node store-ingest-child.mjs SPEC RATE_PER_SECOND FLUSH_MS
 */
const [spec, rateArg, flushArg] = process.argv.slice(2);
if (!spec) throw new Error('usage: store-ingest-child.mjs SPEC RATE FLUSH_MS');
const rate = Number(rateArg ?? 50_000);
const flushMs = Number(flushArg ?? 200);
const dist = new URL('../../dist/store/', import.meta.url);
const { openStore } = await import(new URL('open.js', dist).href);
const { BatchedWriter } = await import(new URL('writer.js', dist).href);

const store = await openStore(spec);
let pushed = 0;
const report = (/** @type {string} */ why) =>
  process.stdout.write(JSON.stringify({ why, pushed, written: writer.stats().written }) + '\n');
const writer = new BatchedWriter(store, {
  flushIntervalMs: flushMs,
  batchSize: 100_000,
  maxQueue: 1_000_000,
  onFlush: () => report('flush'),
});
const t0 = Date.now();
const tick = () => {
  const due = Math.floor(((Date.now() - t0) / 1000) * rate);
  while (pushed < due) {
    writer.pushProbe({
      time: t0 + Math.floor((pushed / rate) * 1000),
      name: 'durable',
      kind: 'tcp',
      target: 'h:1',
      ok: true,
      durationSeconds: 0.001 + (pushed % 1000) / 1e6,
      phases: { connect: 0.0005 },
    });
    pushed++;
  }
  report('tick');
};
setInterval(tick, 20);
