import { spawnSync } from 'node:child_process';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LATENCY404_BUCKETS } from '../../config/schema.js';
import type { Observation, ProbeResult } from '../../core/types.js';
import { VALUE_HELP } from '../../probes/value-help.js';
import { haveCommand } from '../../../test/support/require.js';
import { exposition, renderExposition } from './exposition.js';
import { ProbeMetrics } from './probe-metrics.js';

const BUCKETS = [0.001, 0.01, 0.1];

const run = (name: string, kind: string, result: ProbeResult): Observation => ({
  name,
  kind,
  target: `${name}.example`,
  startedAtMs: 0,
  result,
});

/** A few runs of every shape: success and failure, phases, values that come and go, odd label values. */
const RUNS: Observation[] = [
  run('web', 'http', {
    ok: true,
    durationNs: 2_500_000n,
    networkNs: 2_000_000n,
    phases: { connect: 1_000_000n, processing: 1_000_000n },
    values: { http_status_code: 200, ssl_earliest_cert_expiry: 1.7e9 },
  }),
  run('db', 'tcp', {
    ok: true,
    durationNs: 300_000n,
    networkNs: 10_000n,
    phases: { connect: 10_000n },
    values: {},
  }),
  run('we"ird\\na\nme', 'http', {
    ok: false,
    durationNs: 50_000_000n,
    phases: { connect: 49_000_000n },
    values: { http_status_code: 503 },
    error: { code: 'http_status', message: 'status 503' },
  }),
  run('web', 'http', {
    ok: false,
    durationNs: 900_000_000n,
    phases: { connect: 1_200_000n },
    values: { http_status_code: 500 },
    error: { code: 'http_status', message: 'status 500' },
  }),
  run('db', 'tcp', {
    ok: false,
    durationNs: 200_000n,
    phases: {},
    error: { code: 'refused', message: 'refused' },
  }),
  run('db', 'tcp', {
    ok: true,
    durationNs: 5_000_000_000n,
    networkNs: 4_000_000n,
    phases: { connect: 4_000_000n },
  }),
];

/**
 * The reference: the same runs through prom-client's own Gauge, Histogram and Counter with a target
 * label, registered in the order ProbeMetrics registered them before it wrote its own text.
 */
async function promClientExposition(runs: readonly Observation[]): Promise<string> {
  const registry = new Registry();
  const registers = [registry];
  const success = new Gauge({
    name: 'probe_success',
    help: 'Whether the last probe of the target succeeded (1) or failed (0)',
    labelNames: ['target', 'kind'],
    registers,
  });
  const duration = new Gauge({
    name: 'probe_duration_seconds',
    help: 'Wall time of the last probe of the target, success or failure, in seconds',
    labelNames: ['target', 'kind'],
    registers,
  });
  const histogram = new Histogram({
    name: 'coalmine_probe_duration_seconds',
    help: 'Distribution of probe wall times, successful and failed, in seconds',
    labelNames: ['kind', 'target'],
    buckets: BUCKETS,
    registers,
  });
  const network = new Histogram({
    name: 'coalmine_probe_network_seconds',
    help: "Distribution of successful probes' network time (kernel-timed phases; ICMP: mean RTT), in seconds",
    labelNames: ['kind', 'target'],
    buckets: BUCKETS,
    registers,
  });
  const total = new Counter({
    name: 'coalmine_probes_total',
    help: 'Probe runs by result: success, or the error code of the failure',
    labelNames: ['kind', 'target', 'result'],
    registers,
  });
  const compat = new Map<string, { checks: Counter<string>; time: Histogram<string> }>();
  for (const [kind, prefix] of Object.entries({ http: 'http', tcp: 'tcp', dns: 'dns', icmp: 'ping' })) {
    compat.set(kind, {
      checks: new Counter({
        name: `${prefix}_health_check_total`,
        help: `Total number of ${prefix === 'ping' ? 'ping' : prefix.toUpperCase()} health checks performed`,
        labelNames: ['target', 'status'],
        registers,
      }),
      time: new Histogram({
        name: `${prefix}_response_time_seconds`,
        help: `${prefix === 'ping' ? 'ICMP ping' : prefix.toUpperCase()} response time in seconds`,
        labelNames: ['target'],
        buckets: LATENCY404_BUCKETS,
        registers,
      }),
    });
  }
  const gauges = new Map<string, Gauge<string>>();
  const gauge = (name: string, help: string, labelNames: string[]) => {
    let g = gauges.get(name);
    if (!g) gauges.set(name, (g = new Gauge({ name, help, labelNames, registers })));
    return g;
  };
  for (const { name: target, kind, result } of runs) {
    const seconds = Number(result.durationNs) / 1e9;
    success.set({ target, kind }, result.ok ? 1 : 0);
    duration.set({ target, kind }, seconds);
    histogram.observe({ kind, target }, seconds);
    if (result.ok && result.networkNs !== undefined)
      network.observe({ kind, target }, Number(result.networkNs) / 1e9);
    total.inc({ kind, target, result: result.ok ? 'success' : result.error.code });
    for (const [phase, ns] of Object.entries(result.phases)) {
      gauge(
        `probe_${kind}_duration_seconds`,
        `Duration of each phase of the last ${kind} probe, in seconds`,
        ['target', 'phase'],
      ).set({ target, phase }, Number(ns) / 1e9);
    }
    for (const [name, g] of gauges) if (!name.endsWith('_duration_seconds')) g.remove({ target });
    for (const [name, value] of Object.entries(result.values ?? {}))
      gauge(`probe_${name}`, VALUE_HELP[name]!, ['target']).set({ target }, value);
    const c = compat.get(kind)!;
    c.checks.inc({ target, status: result.ok ? 'success' : 'failure' });
    if (result.ok) c.time.observe({ target }, seconds);
  }
  return registry.metrics();
}

/** Families in order, each with its HELP and TYPE and its series lines sorted (series order is free). */
function families(text: string): { head: string; series: string[] }[] {
  return text
    .trimEnd()
    .split('\n\n')
    .map((block) => {
      const lines = block.split('\n');
      return { head: lines.slice(0, 2).join('\n'), series: lines.slice(2).sort() };
    });
}

describe('the streamed exposition', () => {
  it("writes, with per-target buckets, the series prom-client's own metrics write for the same runs", async () => {
    const registry = new Registry();
    const m = new ProbeMetrics(registry, { buckets: BUCKETS, compat: ['latency404'], targetBuckets: true });
    for (const o of RUNS) m.observe(o);
    const ours = await renderExposition(registry);
    const reference = await promClientExposition(RUNS);
    expect(families(ours)).toEqual(families(reference));
    // Read back through prom-client (registry.metrics(), as tests and tools call it): the same text.
    expect(await registry.metrics()).toBe(ours);
    expect(ours).toContain(
      'coalmine_probe_duration_seconds_bucket{le="0.01",kind="http",target="we\\"ird\\\\na\\nme"} 0',
    );
  });

  it('keeps the probe histograms per kind by default, with every run counted', async () => {
    const registry = new Registry();
    const m = new ProbeMetrics(registry, { buckets: BUCKETS, compat: [] });
    for (const o of RUNS) m.observe(o);
    const text = await renderExposition(registry);
    const buckets = text.split('\n').filter((l) => l.startsWith('coalmine_probe_duration_seconds_bucket'));
    expect(buckets).toEqual([
      'coalmine_probe_duration_seconds_bucket{le="0.001",kind="http"} 0',
      'coalmine_probe_duration_seconds_bucket{le="0.01",kind="http"} 1',
      'coalmine_probe_duration_seconds_bucket{le="0.1",kind="http"} 2',
      'coalmine_probe_duration_seconds_bucket{le="+Inf",kind="http"} 3',
      'coalmine_probe_duration_seconds_bucket{le="0.001",kind="tcp"} 2',
      'coalmine_probe_duration_seconds_bucket{le="0.01",kind="tcp"} 2',
      'coalmine_probe_duration_seconds_bucket{le="0.1",kind="tcp"} 2',
      'coalmine_probe_duration_seconds_bucket{le="+Inf",kind="tcp"} 3',
    ]);
    expect(text).toContain('coalmine_probe_network_seconds_count{kind="tcp"} 2');
    // Per target: the gauges and the counter by result stay.
    expect(text).toContain('probe_success{target="web",kind="http"} 0');
    expect(text).toContain('coalmine_probes_total{kind="tcp",target="db",result="refused"} 1');
    expect(await registry.metrics()).toBe(text);
  });

  const hasPromtool = haveCommand('promtool', 'apt-get install prometheus');
  it.skipIf(!hasPromtool)(
    'is text that promtool finds clean, with and without per-target buckets',
    async () => {
      for (const targetBuckets of [false, true]) {
        const registry = new Registry();
        const m = new ProbeMetrics(registry, { buckets: BUCKETS, compat: ['latency404'], targetBuckets });
        for (const o of RUNS) m.observe(o);
        new Gauge({ name: 'coalmine_targets', help: 'Configured probe targets', registers: [registry] }).set(
          3,
        );
        const text = await renderExposition(registry);
        const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
        expect(check.stdout + check.stderr).toBe('');
        expect(check.status).toBe(0);
      }
    },
  );

  it('lets the event loop run while it renders a large registry', async () => {
    const registry = new Registry();
    const m = new ProbeMetrics(registry, { buckets: BUCKETS, compat: [], targetBuckets: true });
    // 20,000 targets: at 10,000 a fast, idle machine streamed it all in ten 5 ms slices, and the count
    // of turns below sat at its bound.
    for (let i = 0; i < 20_000; i++) {
      m.observe(
        run(`t${i}`, i % 2 ? 'tcp' : 'http', {
          ok: true,
          durationNs: BigInt(1000 + i),
          networkNs: 900n,
          phases: { connect: 500n, processing: 400n },
          values: { http_status_code: 200, ip_protocol: 4 },
        }),
      );
    }
    /** The longest stretch without a turn of the event loop while `work` runs, and how many turns. */
    const watch = async (work: () => Promise<string>) => {
      let turns = 0;
      let longest = 0;
      let last = performance.now();
      let stop = false;
      const spin = () => {
        const now = performance.now();
        longest = Math.max(longest, now - last);
        last = now;
        turns++;
        if (!stop) setTimeout(spin, 0);
      };
      setTimeout(spin, 0);
      const text = await work();
      const now = performance.now();
      longest = Math.max(longest, now - last);
      stop = true;
      return { text, turns, longest };
    };
    // The baseline, in this run: the same registry rendered by prom-client in one go (registry.metrics()
    // through the families' read-back: about 2 s here). A loaded machine slows both alike; 30 s allowed.
    const whole = await watch(() => registry.metrics());
    let chunks = 0;
    const streamed = await watch(async () => {
      let text = '';
      for await (const chunk of exposition(registry, { sliceMs: 5 })) {
        text += chunk;
        chunks++;
      }
      return text;
    });
    expect(streamed.text).toBe(whole.text);
    expect(chunks).toBeGreaterThan(10);
    expect(streamed.turns).toBeGreaterThan(10);
    // Judged against the baseline, not a clock: a slice is a small part of the whole render.
    expect(streamed.longest).toBeLessThan(whole.longest / 4);
  }, 30_000);
});
