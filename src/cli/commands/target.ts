import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parseListen } from '../../config/load.js';
import { startDnsServer } from '../../target/dns-server.js';
import { startExampleService } from '../../target/example-service.js';
import type { Io } from '../main.js';
import { untilSignal } from '../signals.js';

export const EXAMPLE_DNS_NAME = 'example.example-corp.internal';

export function targetCommand(program: Command, io: Io): void {
  program
    .command('target')
    .description(
      'Serve the example target service: GET /health, /notes?content=..., and optionally a DNS zone',
    )
    .option('-l, --listen <host:port>', 'HTTP address', '127.0.0.1:8000')
    .option(
      '--notes-file <file>',
      'file that /notes appends to (kept under 1 MiB)',
      join(tmpdir(), 'coalmine-notes.txt'),
    )
    .option('--dns-listen <host:port>', `also answer DNS (UDP and TCP) for ${EXAMPLE_DNS_NAME}`)
    .action(async (opts: { listen: string; notesFile: string; dnsListen?: string }) => {
      const { host, port } = parseListen(opts.listen);
      const service = await startExampleService({ host, port, notesFile: opts.notesFile });
      const stopped = untilSignal();
      io.err(`example service at ${service.url} (/health, /notes?content=...), notes in ${opts.notesFile}`);
      let dns: { close(): Promise<void> } | undefined;
      if (opts.dnsListen) {
        const d = parseListen(opts.dnsListen);
        const server = await startDnsServer({ host: d.host, port: d.port, records: exampleZone(d.host) });
        dns = server;
        io.err(`DNS for ${EXAMPLE_DNS_NAME} at ${d.host}:${server.port} (UDP and TCP)`);
      }
      await stopped;
      await Promise.all([service.close(), dns?.close()]);
    });
}

export function exampleZone(address: string) {
  const v6 = address.includes(':');
  return {
    [EXAMPLE_DNS_NAME]: v6
      ? { AAAA: [address === '::' ? '::1' : address] }
      : { A: [address === '0.0.0.0' ? '127.0.0.1' : address] },
  };
}
