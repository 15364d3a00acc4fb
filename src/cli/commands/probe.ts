import type { Command } from 'commander';
import { systemClock } from '../../core/clock.js';
import { UsageError } from '../../core/errors.js';
import { toReport } from '../../core/report.js';
import { runProbe } from '../../probes/run.js';
import { isProbeKind, probeKinds, probes } from '../../probes/registry.js';
import { REPORT_HEADER, reportRow, table } from '../format.js';
import { collect, DURATION_UNITS, durationFlag, kindOptions, kindsHelp, positiveInt } from '../options.js';
import type { Io } from '../main.js';

export function probeCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('probe')
    .description('Run one-off probes against a target and print the results')
    .argument('<kind>', `probe kind: ${probeKinds.join(', ')}`)
    .argument('<target>', 'what to probe (see the kinds below)')
    .option('-c, --count <n>', 'how many probes to run', positiveInt('--count'), 1)
    .addOption(durationFlag('-t, --timeout <duration>', `timeout of each probe ${DURATION_UNITS}`, 10_000))
    .addOption(
      durationFlag('-i, --interval <duration>', 'time between the starts of consecutive probes', 1000),
    )
    .option(
      '-o, --option <name=value>',
      'a kind option (e.g. -o method=HEAD); repeat a list option to add to it (-o validStatusCodes=200 -o validStatusCodes=204, or [200,204]); other options take one value',
      collect,
      [],
    )
    .option('--json', 'print one JSON object per probe per line')
    .addHelpText('after', kindsHelp())
    .action(
      async (
        kind: string,
        target: string,
        opts: { count: number; timeout: number; interval: number; option: string[]; json?: boolean },
      ) => {
        if (!isProbeKind(kind))
          throw new UsageError(`unknown probe kind "${kind}" (one of ${probeKinds.join(', ')})`);
        const problem = probes[kind].validateTarget(target);
        if (problem) throw new UsageError(`target "${target}": ${problem}`);
        const options = kindOptions(kind, opts.option);
        const rows: string[][] = [];
        let failures = 0;
        const t0 = Date.now();
        for (let i = 0; i < opts.count; i++) {
          const wait = t0 + i * opts.interval - Date.now();
          if (i > 0 && wait > 0) await new Promise((r) => setTimeout(r, wait));
          const startedAtMs = Date.now();
          const result = await runProbe(kind, target, options, {
            clock: systemClock,
            timeoutMs: opts.timeout,
          });
          const report = toReport({ name: target, kind, target, startedAtMs, result });
          if (!result.ok) failures++;
          if (opts.json) {
            io.out(JSON.stringify(report));
          } else {
            rows.push(reportRow(report));
            // Long runs show progress on a terminal; the table comes at the end, aligned.
            if (opts.count > 1 && io.isTty)
              io.err(`probe ${i + 1}/${opts.count}: ${rows.at(-1)!.slice(2, 4).join(' ')}`);
          }
        }
        if (!opts.json && rows.length > 0) io.out(table(REPORT_HEADER, rows));
        setExit(failures > 0 ? 1 : 0);
      },
    );
}
