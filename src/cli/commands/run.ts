import type { Command } from 'commander';
import { Agent } from '../../agent/agent.js';
import { startServer } from '../../api/server.js';
import { loadConfigFile, parseListen } from '../../config/load.js';
import { toReport } from '../../core/report.js';
import type { Io } from '../main.js';
import { untilSignal } from '../signals.js';

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
      const config = await loadConfigFile(opts.config);
      if (opts.listen) config.listen = parseListen(opts.listen);
      const agent = new Agent(config, {
        onObservation: opts.logResults ? (o) => io.out(JSON.stringify(toReport(o))) : undefined,
      });
      const server = await startServer(agent, config.listen.host, config.listen.port);
      agent.start();
      io.err(`coalmine agent: ${config.targets.length} targets; metrics at ${server.url}/metrics`);
      await untilSignal();
      io.err('coalmine agent: stopping');
      await server.close();
      await agent.close();
    });
}
