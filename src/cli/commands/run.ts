import type { Command } from 'commander';
import { VERSION } from '../../agent/agent.js';
import { logProbeTransitions } from '../../agent/probe-transitions.js';
import { startStack } from '../../agent/stack.js';
import { loadConfigFile, parseListen } from '../../config/load.js';
import { leanHeap, setLeanHeap, tooBusyForLeanHeap } from '../../core/heap.js';
import { toReport } from '../../core/report.js';
import type { Observation } from '../../core/types.js';
import { logFormatOption, logLevelOption, type CliLogging, type LogFlags } from '../logging.js';
import type { Io } from '../main.js';
import { untilSignal } from '../signals.js';

export function runCommand(program: Command, io: Io, logging: CliLogging): void {
  program
    .command('run')
    .description(
      'Run the agent: probe every configured target on its interval and serve /metrics, /healthz, /check',
    )
    .requiredOption('-c, --config <file>', 'YAML config file (see `coalmine config schema`)')
    .option(
      '-l, --listen <host:port>',
      'address of the HTTP endpoints (overrides the config; default 127.0.0.1:9777)',
    )
    .option('--log-results', 'print every probe result as a JSON line on stdout')
    .addOption(logFormatOption())
    .addOption(logLevelOption())
    .action(async (opts: { config: string; listen?: string; logResults?: boolean } & LogFlags) => {
      const log = logging.start(opts);
      const config = await loadConfigFile(opts.config);
      if (opts.listen) config.listen = parseListen(opts.listen);
      const work = {
        pingsPerSecond: config.messaging.canaries.reduce((sum, c) => sum + c.rate, 0),
        probesPerSecond: config.targets.reduce((sum, t) => sum + 1000 / t.intervalMs, 0),
      };
      const busy = tooBusyForLeanHeap(work);
      if (leanHeap() && busy !== undefined) {
        // A 1 MB young generation would promote every ping and probe in flight at each scavenge.
        setLeanHeap(false);
        log.info(`V8's default heap sizes: ${busy}`, {
          component: 'agent',
          pingsPerSecond: work.pingsPerSecond,
          probesPerSecond: Math.round(work.probesPerSecond),
        });
      }
      const transitions = logProbeTransitions(log);
      const onObservation = opts.logResults
        ? (o: Observation) => {
            transitions(o);
            io.out(JSON.stringify(toReport(o)));
          }
        : transitions;
      const stack = await startStack(config, { log, onObservation });
      const alog = log.child({ component: 'agent' });
      // Listening for the signal before saying we are up: a Ctrl-C right after that line is a clean stop.
      const stopped = untilSignal();
      alog.info('agent started', {
        version: VERSION,
        targets: config.targets.length,
        canaries: config.messaging.canaries.length,
        coalminers: config.messaging.coalminers.length,
        url: stack.server.url,
        dashboard: stack.dashboard,
        store: stack.store?.engine ?? 'none',
      });
      // The URL people copy, token and all: on stdout, never in the log (which has it as token=***).
      // With --log-results stdout is JSON lines, so there it is one more JSON object.
      io.out(
        opts.logResults ? JSON.stringify({ dashboard: stack.dashboard }) : `dashboard: ${stack.dashboard}`,
      );
      await stopped;
      alog.info('agent stopping');
      await stack.close();
      alog.info('agent stopped');
    });
}
