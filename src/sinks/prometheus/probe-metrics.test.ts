import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { Observation, ProbeResult } from '../../core/types.js';
import { ProbeMetrics } from './probe-metrics.js';

const obs = (target: string, result: ProbeResult): Observation =>
  ({ name: target, kind: 'http', target, startedAtMs: 0, result }) as Observation;

describe('ProbeMetrics', () => {
  it('exports each run, drops values a later run lacks, and forgets a target', async () => {
    const registry = new Registry();
    const m = new ProbeMetrics(registry, { buckets: [0.001, 0.01], compat: [] });
    m.observe(
      obs('a', {
        ok: true,
        durationNs: 2_000_000n,
        phases: { connect: 1_000_000n, processing: 1_000_000n },
        values: { http_status_code: 200, ssl_earliest_cert_expiry: 1e9 },
      }),
    );
    m.observe(
      obs('a', {
        ok: false,
        durationNs: 5_000_000n,
        phases: { connect: 3_000_000n },
        values: { http_status_code: 500 },
        error: { code: 'http_status', message: 'got 500' },
      }),
    );
    m.observe(obs('b', { ok: true, durationNs: 1_000_000n, phases: {}, values: { http_status_code: 204 } }));
    let text = await registry.metrics();
    expect(text).toContain('probe_success{target="a",kind="http"} 0');
    expect(text).toContain('probe_duration_seconds{target="a",kind="http"} 0.005');
    expect(text).toContain('probe_http_duration_seconds{target="a",phase="connect"} 0.003');
    expect(text).toContain('probe_http_status_code{target="a"} 500');
    expect(text).toContain('probe_http_status_code{target="b"} 204');
    // The second run of "a" had no certificate: its expiry must not linger from the first.
    expect(text).not.toContain('probe_ssl_earliest_cert_expiry{target="a"}');
    expect(text).toContain('coalmine_probes_total{kind="http",target="a",result="success"} 1');
    expect(text).toContain('coalmine_probes_total{kind="http",target="a",result="http_status"} 1');
    // Per kind by default (metrics.targetBuckets: false): a, a and b.
    expect(text).toContain('coalmine_probe_duration_seconds_count{kind="http"} 3');
    expect(text).not.toContain('coalmine_probe_duration_seconds_count{kind="http",target=');

    m.forget('a', 'http');
    text = await registry.metrics();
    expect(text).not.toContain('probe_success{target="a"');
    expect(text).not.toContain('probe_http_status_code{target="a"}');
    expect(text).not.toContain('probe_http_duration_seconds{target="a"');
    // Observed again after forget, it comes back whole.
    m.observe(obs('a', { ok: true, durationNs: 1_000_000n, phases: {}, values: { http_status_code: 200 } }));
    expect(await registry.metrics()).toContain('probe_http_status_code{target="a"} 200');
  });

  it('keeps the duration histograms per target with targetBuckets', async () => {
    const registry = new Registry();
    const m = new ProbeMetrics(registry, { buckets: [0.001, 0.01], compat: [], targetBuckets: true });
    m.observe(obs('a', { ok: true, durationNs: 2_000_000n, networkNs: 500_000n, phases: {} }));
    m.observe(obs('a', { ok: true, durationNs: 20_000_000n, networkNs: 500_000n, phases: {} }));
    m.observe(
      obs('b', { ok: false, durationNs: 1_000_000n, phases: {}, error: { code: 'timeout', message: 't' } }),
    );
    const text = await registry.metrics();
    expect(text).toContain('coalmine_probe_duration_seconds_bucket{le="0.01",kind="http",target="a"} 1');
    expect(text).toContain('coalmine_probe_duration_seconds_count{kind="http",target="a"} 2');
    expect(text).toContain('coalmine_probe_duration_seconds_count{kind="http",target="b"} 1');
    expect(text).toContain('coalmine_probe_network_seconds_count{kind="http",target="a"} 2');
    // b never succeeded: no network series for it, as prom-client had none before its first value.
    expect(text).not.toContain('coalmine_probe_network_seconds_count{kind="http",target="b"}');
  });
});
