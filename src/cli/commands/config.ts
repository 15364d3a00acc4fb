import type { Command } from 'commander';
import { checkListenSafety, ListenSafetyError, resolveAuth } from '../../api/auth.js';
import { loadConfigFile } from '../../config/load.js';
import { configJsonSchema } from '../../config/schema.js';
import { ConfigError } from '../../core/errors.js';
import { describeProbeWorkers } from '../../probes/workers/plan.js';
import type { Io } from '../main.js';

export function configCommand(program: Command, io: Io): void {
  const config = program.command('config').description('Validate a config file or print its JSON Schema');
  config
    .command('check')
    .description('Validate a config file: exit 0 when valid, exit 2 listing every problem with its line')
    .argument('<file>', 'YAML config file')
    .action(async (file: string) => {
      const cfg = await loadConfigFile(file);
      // What `coalmine run` would refuse at start is a config problem too.
      try {
        checkListenSafety(cfg.listen.host, resolveAuth(cfg.api).configured);
      } catch (err) {
        if (err instanceof ListenSafetyError) throw new ConfigError([`${file}: listen: ${err.message}`]);
        throw err;
      }
      io.out(
        `${file}: valid: ${cfg.targets.length} target${cfg.targets.length === 1 ? '' : 's'}, default interval ${cfg.intervalMs / 1000}s, ${describeProbeWorkers(cfg.probes?.workers, cfg.targets)}`,
      );
    });
  config
    .command('schema')
    .description('Print the JSON Schema of the config file, for editors (e.g. yaml-language-server)')
    .action(() => {
      io.out(JSON.stringify(configJsonSchema(), null, 2));
    });
}
