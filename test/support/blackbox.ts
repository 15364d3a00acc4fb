import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './net.js';

/** A private blackbox_exporter (Debian's prometheus-blackbox-exporter) for side-by-side checks. */
export interface BlackboxExporter {
  /** GET /probe for a module of the config: the exporter's /metrics-format answer. */
  probe(module: string, target: string): Promise<string>;
  close(): void;
}

/** Starts one on a free loopback port with `config` (its YAML) and waits until it is healthy. */
export async function startBlackboxExporter(config: string): Promise<BlackboxExporter> {
  const dir = mkdtempSync(join(tmpdir(), 'coalmine-blackbox-'));
  const file = join(dir, 'blackbox.yml');
  writeFileSync(file, config);
  const port = await freePort();
  const child = spawn(
    'prometheus-blackbox-exporter',
    [`--config.file=${file}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: 'ignore' },
  );
  const close = () => {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('blackbox_exporter', async () => {
      const r = await fetch(`http://127.0.0.1:${port}/-/healthy`);
      return r.ok ? true : undefined;
    });
  } catch (err) {
    close();
    throw err;
  }
  return {
    probe: async (module, target) =>
      (
        await fetch(`http://127.0.0.1:${port}/probe?module=${module}&target=${encodeURIComponent(target)}`)
      ).text(),
    close,
  };
}
