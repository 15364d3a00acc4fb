import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseDocument } from 'yaml';
import { toPrometheusRules } from '../../alerting/prometheus-export.js';
import { alertingConfigSchema } from '../../alerting/rules.js';
import { ConfigError, UsageError } from '../../core/errors.js';
import type { Io } from '../main.js';

const FORMATS = ['prometheus'] as const;

export function alertsCommand(program: Command, io: Io): void {
  const alerts = program.command('alerts').description('Work with alert rules');
  alerts
    .command('export')
    .description('Print the alerting: rules of a config file as a Prometheus rule file')
    .requiredOption('--config <file>', 'YAML config file with an alerting: section')
    .option('--format <format>', `output format: ${FORMATS.join(', ')}`, 'prometheus')
    .action(async (opts: { config: string; format: string }) => {
      if (!(FORMATS as readonly string[]).includes(opts.format))
        throw new UsageError(
          `unknown --format ${JSON.stringify(opts.format)} (one of ${FORMATS.join(', ')})`,
        );
      const file = opts.config;
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        throw new ConfigError([`${file}: cannot read: ${(err as Error).message}`], { cause: err });
      }
      const doc = parseDocument(text);
      if (doc.errors.length > 0)
        throw new ConfigError(doc.errors.map((e) => `${file}: YAML: ${e.message.split('\n')[0]}`));
      const data: unknown = doc.toJS();
      const section =
        data !== null && typeof data === 'object' ? (data as Record<string, unknown>)['alerting'] : undefined;
      if (section === undefined || section === null)
        throw new ConfigError([`${file}: no alerting: section to export`]);
      const parsed = alertingConfigSchema.safeParse(section);
      if (!parsed.success)
        throw new ConfigError(
          parsed.error.issues.map((i) => `${file}: ${['alerting', ...i.path].join('.')}: ${i.message}`),
        );
      io.out(toPrometheusRules(parsed.data.rules).replace(/\n$/, ''));
    });
}
