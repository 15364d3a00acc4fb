import type { Command } from 'commander';
import { startStack } from '../../agent/stack.js';
import { loadConfigFile, parseListen } from '../../config/load.js';
import { toReport } from '../../core/report.js';
import type { Io } from '../main.js';
import { guardProcess, untilSignal } from '../signals.js';

export function runCommand(program: Command, io: Io): void {
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
    .option('--log-results', 'print every probe result as a JSON line')
    .action(async (opts: { config: string; listen?: string; logResults?: boolean }) => {
      guardProcess(io.err);
      const config = await loadConfigFile(opts.config);
      if (opts.listen) config.listen = parseListen(opts.listen);
      const stack = await startStack(config, {
        log: io.err,
        ...(opts.logResults ? { onObservation: (o) => io.out(JSON.stringify(toReport(o))) } : {}),
      });
      const flows = config.messaging.canaries.length + config.messaging.coalminers.length;
      io.err(
        `coalmine agent: ${config.targets.length} targets, ${flows} canaries and coalminers; metrics at ${stack.server.url}/metrics`,
      );
      io.err(`dashboard: ${stack.dashboard}`);
      if (stack.store) io.err(`results store: ${stack.store.engine}`);
      await untilSignal();
      io.err('coalmine agent: stopping');
      await stack.close();
    });
}
