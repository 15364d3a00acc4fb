// @ts-check
/** Prometheus' blackbox_exporter as the bench's peer: config, start, probe and stop. */
import { execFileSync } from 'node:child_process';
import { openSync, writeFileSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { join } from 'node:path';
import { freePort, killPid, sleep, spawnTracked } from './procs.mjs';

export const BLACKBOX_BIN = process.env.BLACKBOX_EXPORTER ?? '/usr/bin/prometheus-blackbox-exporter';

const CONFIG = `# Written by coalmine's bench/probes.mjs.
modules:
  tcp_connect:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
  icmp:
    prober: icmp
    timeout: 5s
    icmp:
      preferred_ip_protocol: ip4
`;

/** @returns {string} the version line, or a reason it could not run */
export function blackboxVersion() {
  try {
    return execFileSync(BLACKBOX_BIN, ['--version'], { stdio: ['ignore', 'pipe', 'pipe'] })
      .toString()
      .split('\n')[0]
      .trim();
  } catch (err) {
    return `unavailable: ${/** @type {Error} */ (err).message.split('\n')[0]}`;
  }
}

/**
 * GET a URL and return status and body.
 * @param {string} url
 * @param {Agent} agent
 * @returns {Promise<{ status: number, body: string }>}
 */
export function fetchText(url, agent) {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/**
 * A sample's value from Prometheus text exposition, optionally requiring a label matcher like `phase="rtt"`.
 * @param {string} text
 * @param {string} name
 * @param {string} [label]
 */
export function sampleValue(text, name, label) {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    if (label && !(m[2] ?? '').includes(label)) continue;
    return Number(m[3]);
  }
  return undefined;
}

/**
 * One running blackbox_exporter.
 * @typedef {{ pid: number, base: string, agent: Agent, probe(module: string, target: string): Promise<string>, stop(): Promise<void> }} Blackbox
 */

/**
 * Starts blackbox_exporter on a free loopback port with our module config in `dir`.
 * @param {string} dir temporary directory for its config and log
 * @param {{ name: string, cpu?: number, gomaxprocs?: number }} opts
 * @returns {Promise<Blackbox>}
 */
export async function startBlackbox(dir, opts) {
  const configFile = join(dir, 'blackbox.yml');
  writeFileSync(configFile, CONFIG);
  const port = await freePort();
  const logFd = openSync(join(dir, `${opts.name}.log`), 'a');
  const env = { ...process.env };
  if (opts.gomaxprocs) env.GOMAXPROCS = String(opts.gomaxprocs);
  const proc = spawnTracked(
    opts.name,
    BLACKBOX_BIN,
    [`--config.file=${configFile}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { cpu: opts.cpu, env, stdio: ['ignore', logFd, logFd] },
  );
  const base = `http://127.0.0.1:${port}`;
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null)
      throw new Error(`blackbox_exporter exited with ${proc.exitCode}; see ${dir}/${opts.name}.log`);
    try {
      const r = await fetchText(`${base}/-/healthy`, agent);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await killPid(proc);
      throw new Error(`blackbox_exporter did not become healthy within 10 s; see ${dir}/${opts.name}.log`);
    }
    await sleep(50);
  }
  return {
    pid: /** @type {number} */ (proc.pid),
    base,
    agent,
    async probe(module, target) {
      const url = `${base}/probe?module=${encodeURIComponent(module)}&target=${encodeURIComponent(target)}`;
      const r = await fetchText(url, agent);
      if (r.status !== 200)
        throw new Error(`blackbox_exporter answered ${r.status} to ${url}: ${r.body.slice(0, 200)}`);
      return r.body;
    },
    async stop() {
      agent.destroy();
      await killPid(proc);
    },
  };
}
