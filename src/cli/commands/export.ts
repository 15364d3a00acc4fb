import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import {
  openStore,
  parseStoreSpec,
  shownSpec,
  StoreError,
  storeExists,
  storeLabel,
} from '../../store/open.js';
import { parseTimeSpec } from '../../store/time-spec.js';
import { probeCsvHeader, probeCsvRow } from '../../store/csv.js';
import type { Io } from '../main.js';

function timeOption(flag: string, nowMs: number) {
  return (text: string): number => {
    const t = parseTimeSpec(text, nowMs);
    if (t === undefined)
      throw new UsageError(
        `${flag}: expected an ISO time (2024-05-01T12:00:00Z), Unix ms or a relative time like -1h (got "${text}")`,
      );
    return t;
  };
}

/** `coalmine export`: every raw probe result of a target over a range, streamed as CSV or JSON lines. */
export function exportCommand(program: Command, io: Io): void {
  const now = Date.now();
  program
    .command('export')
    .description('Print every raw probe result of a target over a time range, as CSV or JSON lines')
    .requiredOption('--store <spec>', 'the results store: sqlite:PATH, a data directory, or postgres://...')
    .requiredOption('--target <name>', 'the target name, as in the config')
    .option(
      '--from <time>',
      'start (ISO time, Unix ms, or relative like -24h)',
      timeOption('--from', now),
      now - 86_400_000,
    )
    .option(
      '--to <time>',
      'end, exclusive (ISO time, Unix ms, relative, or now)',
      timeOption('--to', now),
      now,
    )
    .option('--format <format>', 'csv or jsonl', 'csv')
    .action(async (opts: { store: string; target: string; from: number; to: number; format: string }) => {
      if (opts.format !== 'csv' && opts.format !== 'jsonl')
        throw new UsageError(`--format: expected csv or jsonl (got "${opts.format}")`);
      if (opts.to <= opts.from)
        throw new UsageError(
          `--to (${new Date(opts.to).toISOString()}) must be after --from (${new Date(opts.from).toISOString()})`,
        );
      let store;
      try {
        const spec = parseStoreSpec(opts.store);
        // Exporting never creates a store: a mistyped path would otherwise "export" nothing, silently.
        if (storeExists(spec) === false)
          throw new StoreError(`--store: no ${storeLabel(spec)} store at ${shownSpec(spec)}`);
        store = await openStore(opts.store);
      } catch (err) {
        if (err instanceof StoreError) throw new UsageError(err.message, { cause: err });
        throw err;
      }
      try {
        if (opts.format === 'csv') io.out(probeCsvHeader());
        for await (const r of store.exportProbes(opts.target, opts.from, opts.to))
          io.out(opts.format === 'csv' ? probeCsvRow(r) : JSON.stringify(r));
      } finally {
        await store.close();
      }
    });
}
