import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selfSignedCert } from '../../../test/support/certs.js';
import { lineLogger } from '../../../test/support/logs.js';
import type { Logger } from '../../core/log.js';
import { createServer, type Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bucketsByIndex, definitionBuckets } from '../../../test/support/exponential-buckets.js';
import {
  metricOf,
  pointsOf,
  startOtlpReceiver,
  type OtlpReceiver,
} from '../../../test/support/otlp-receiver.js';
import type { Clock } from '../../core/clock.js';
import type { Observation, ProbeResult } from '../../core/types.js';
import { Canary } from '../../messaging/canary.js';
import { Coalminer } from '../../messaging/coalminer.js';
import { decode } from '../../messaging/envelope.js';
import { teeMessagingSinks, type MessagingSink } from '../../messaging/observer.js';
import { MemoryTransport } from '../../transports/memory/index.js';
import type { PublishReceipt, Transport } from '../../transports/transport.js';
import { metricsUrlFromBase, type OtlpConfig } from './config.js';
import { OtlpSink } from './sink.js';

const WALL_MS = 1_763_900_000_000;
const clock: Clock = { nowNs: () => process.hrtime.bigint(), wallMs: () => WALL_MS };

function config(receiver: OtlpReceiver, over: Partial<OtlpConfig> = {}): OtlpConfig {
  return {
    url: metricsUrlFromBase(receiver.url),
    protocol: 'http/protobuf',
    headers: {},
    intervalMs: 60_000,
    timeoutMs: 2000,
    compression: 'none',
    resource: {},
    maxBuckets: 160,
    maxSeries: 2000,
    ...over,
  };
}

const probe = (name: string, kind: string, result: ProbeResult): Observation => ({
  name,
  kind,
  target: `127.0.0.1:${name.length}`,
  startedAtMs: WALL_MS,
  result,
});
const ok = (ms: number, phases: ProbeResult['phases'] = {}): ProbeResult => ({
  ok: true,
  durationNs: BigInt(ms * 1e6),
  phases,
});

describe('OtlpSink to a receiver started by the test', () => {
  let receiver: OtlpReceiver;
  const sinks: OtlpSink[] = [];
  const make = (over: Partial<OtlpConfig> = {}, log?: Logger) => {
    const registry = new Registry();
    const sink = new OtlpSink(config(receiver, over), {
      registry,
      clock,
      version: '9.8.7',
      hostName: 'agent-1',
      ...(log ? { log } : {}),
    });
    sinks.push(sink);
    return { sink, registry };
  };
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
  });
  afterEach(async () => {
    receiver.behave({ type: 'ok' });
    await Promise.all(sinks.splice(0).map((s) => s.close()));
    receiver.exports.length = 0;
  });
  afterAll(() => receiver.close());

  for (const [protocol, compression] of [
    ['http/protobuf', 'none'],
    ['http/json', 'none'],
    ['http/protobuf', 'gzip'],
    ['http/json', 'gzip'],
  ] as const) {
    it(`sends 1, 2 and 4 ms as the exponential histogram they must give (${protocol}, ${compression})`, async () => {
      const { sink } = make({
        protocol,
        compression,
        headers: { 'X-Api-Key': 'k-123' },
        resource: { 'deployment.environment': 'test' },
      });
      for (const ms of [1, 2, 4]) sink.observeProbe(probe('web', 'http', ok(ms, { connect: 500_000n })));
      sink.observeProbe(
        probe('web', 'http', {
          ok: false,
          durationNs: 5_000_000_000n,
          phases: {},
          error: { code: 'timeout', message: 'no answer' },
        }),
      );
      expect(await sink.flush()).toMatchObject({ ok: true, rejectedDataPoints: 0 });
      const e = receiver.exports.at(-1)!;
      expect(e).toMatchObject({
        path: '/v1/metrics',
        protocol: protocol === 'http/json' ? 'json' : 'protobuf',
        gzip: compression === 'gzip',
      });
      expect(e.headers['x-api-key']).toBe('k-123');
      expect(e.headers['user-agent']).toBe('coalmine/9.8.7');
      expect(e.resource).toEqual({
        'service.name': 'coalmine',
        'service.version': '9.8.7',
        'host.name': 'agent-1',
        'service.instance.id': 'agent-1',
        'deployment.environment': 'test',
      });
      expect(e.scope).toEqual({ name: 'coalmine', version: '9.8.7' });

      const duration = metricOf(e, 'coalmine.probe.duration');
      expect(duration).toMatchObject({ type: 'exponentialHistogram', unit: 's', temporality: 2 });
      const [success] = pointsOf(e, 'coalmine.probe.duration', { result: 'success' });
      expect(success).toMatchObject({
        attributes: { target: 'web', kind: 'http', result: 'success' },
        count: 3,
        sum: 0.001 + 0.002 + 0.004,
        min: 0.001,
        max: 0.004,
        zeroCount: 0,
        scale: 6,
        offset: -638,
        startTimeNs: BigInt(WALL_MS) * 1_000_000n,
        timeNs: BigInt(WALL_MS) * 1_000_000n,
        negativeBuckets: 0,
      });
      expect(success!.bucketCounts).toEqual([
        1,
        ...Array<number>(63).fill(0),
        1,
        ...Array<number>(63).fill(0),
        1,
      ]);
      // A single value keeps the finest scale: 5 s at scale 20.
      const [timeout] = pointsOf(e, 'coalmine.probe.duration', { result: 'timeout' });
      expect(timeout).toMatchObject({ count: 1, sum: 5, min: 5, max: 5, scale: 20 });
      expect(bucketsByIndex(timeout!.offset!, timeout!.bucketCounts!)).toEqual(definitionBuckets([5], 20));
      expect(pointsOf(e, 'coalmine.probe.phase.duration', { phase: 'connect' })[0]).toMatchObject({
        attributes: { target: 'web', kind: 'http', phase: 'connect' },
        count: 3,
        min: 0.0005,
        max: 0.0005,
      });
      expect(pointsOf(e, 'coalmine.probe.success')).toEqual([
        expect.objectContaining({ attributes: { target: 'web', kind: 'http' }, value: 0, asInt: true }),
      ]);
    });
  }

  it("sends a successful run's network time apart from its wall time, and none for a failed run", async () => {
    const { sink } = make();
    sink.observeProbe(probe('db', 'tcp', { ...ok(2), networkNs: 10_000n }));
    sink.observeProbe(
      probe('db', 'tcp', {
        ok: false,
        durationNs: 3_000_000n,
        phases: {},
        error: { code: 'refused', message: 'x' },
      }),
    );
    await sink.flush();
    const e = receiver.exports.at(-1)!;
    expect(pointsOf(e, 'coalmine.probe.network')).toEqual([
      expect.objectContaining({ attributes: { target: 'db', kind: 'tcp' }, count: 1, sum: 0.00001 }),
    ]);
    expect(pointsOf(e, 'coalmine.probe.duration').map((p) => p.sum)).toEqual([0.002, 0.003]);
  });

  it("sends each target's last probe values as probe.<name> gauges, dropping one the last run lacks", async () => {
    const { sink } = make();
    const expiry = WALL_MS / 1000 + 30 * 86_400;
    sink.observeProbe(
      probe('shop', 'http', {
        ...ok(5),
        values: { http_status_code: 200, ssl_earliest_cert_expiry: expiry },
      }),
    );
    sink.observeProbe(probe('dns', 'dns', { ...ok(1), values: { dns_rcode: 0 } }));
    await sink.flush();
    let e = receiver.exports.at(-1)!;
    expect(metricOf(e, 'probe.http_status_code')).toMatchObject({
      description: 'HTTP status code of the last response',
      points: [expect.objectContaining({ attributes: { target: 'shop', kind: 'http' }, value: 200 })],
    });
    expect(pointsOf(e, 'probe.ssl_earliest_cert_expiry')[0]?.value).toBe(expiry);
    expect(pointsOf(e, 'probe.dns_rcode')).toEqual([
      expect.objectContaining({ attributes: { target: 'dns', kind: 'dns' }, value: 0 }),
    ]);
    // The next run has no TLS and a 503.
    sink.observeProbe(probe('shop', 'http', { ...ok(5), values: { http_status_code: 503 } }));
    await sink.flush();
    e = receiver.exports.at(-1)!;
    expect(pointsOf(e, 'probe.http_status_code')[0]?.value).toBe(503);
    expect(e.metrics.some((m) => m.name === 'probe.ssl_earliest_cert_expiry')).toBe(false);
  });

  it('keeps histograms cumulative from one export to the next', async () => {
    const { sink } = make();
    sink.observeProbe(probe('db', 'tcp', ok(1)));
    await sink.flush();
    sink.observeProbe(probe('db', 'tcp', ok(3)));
    await sink.flush();
    const [first, second] = receiver.exports.map((e) => pointsOf(e, 'coalmine.probe.duration')[0]!);
    expect(first).toMatchObject({ count: 1, sum: 0.001 });
    expect(second).toMatchObject({ count: 2, sum: 0.004, min: 0.001, max: 0.003 });
    expect(second!.startTimeNs).toBe(first!.startTimeNs);
  });

  it('sends attribute sets beyond maxSeries to one otel.metric.overflow series, and says so once', async () => {
    const lines: string[] = [];
    const { sink } = make({ maxSeries: 2 }, lineLogger(lines));
    for (const name of ['a', 'b', 'c', 'd']) sink.observeProbe(probe(name, 'tcp', ok(2)));
    await sink.flush();
    const points = pointsOf(receiver.exports[0]!, 'coalmine.probe.duration');
    expect(points.map((p) => p.attributes)).toEqual([
      { target: 'a', kind: 'tcp', result: 'success' },
      { target: 'b', kind: 'tcp', result: 'success' },
      { 'otel.metric.overflow': true },
    ]);
    expect(points[2]).toMatchObject({ count: 2 });
    expect(lines.filter((l) => l.includes('coalmine.probe.duration has more than 2'))).toHaveLength(1);
  });

  it('reports a canary and coalminer pair: latency exactly as observed, and the pings a lossy path dropped', async () => {
    const { sink } = make();
    // Ground truth: the same observations, recorded beside the sink.
    const samples: number[] = [];
    const arrivals = new Map<string, number>();
    const recorder: MessagingSink = {
      canaryObserver: () => ({}),
      coalminerObserver: () => ({
        latency: (_c, fromIntended) => samples.push(Math.max(0, fromIntended)),
        arrival: (_c, kind) => arrivals.set(kind, (arrivals.get(kind) ?? 0) + 1),
      }),
      watchCoalminer: () => {},
      watchTransport: () => {},
    };
    const tee = teeMessagingSinks(sink.messaging, recorder);
    const t = new MemoryTransport('memory://otlp-sink-pair');
    await t.connect();
    tee.watchTransport(t);
    const dropped = new Set([5, 6, 40, 77]);
    const lossy = new Proxy(t, {
      get(target, prop, receiver) {
        if (prop === 'publish')
          return async (channel: string, payload: Uint8Array): Promise<PublishReceipt> => {
            const env = decode(payload);
            if (env.type === 'ping' && dropped.has(Number(env.seq))) return {};
            return target.publish(channel, payload);
          };
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as Transport;
    const canary = new Canary({
      name: 'c1',
      transport: lossy,
      ratePerSecond: 200,
      coalminers: ['eu'],
      observer: tee.canaryObserver('c1', 'memory'),
    });
    const coalminer = new Coalminer({
      name: 'eu',
      transport: t,
      register: [],
      accept: ['c1'],
      region: 'eu-west-1',
      sequence: { lossTimeoutMs: 150 },
      observer: tee.coalminerObserver('eu', 'memory', 'eu-west-1'),
    });
    tee.watchCoalminer(coalminer, 'memory', 'eu-west-1');
    await coalminer.start();
    await canary.start();
    const deadline = Date.now() + 5000;
    while ((canary.stats().get('eu')?.attempted ?? 0) < 100 && Date.now() < deadline) await sleep(10);
    await canary.stop();
    await sleep(300);
    coalminer.tick();
    const counts = coalminer.reports()[0]!.counts;
    const sent = canary.stats().get('eu')!.sent;
    await sink.flush();
    await coalminer.stop();
    await t.close();

    const e = receiver.exports.at(-1)!;
    const flow = { canary: 'c1', coalminer: 'eu', transport: 'memory', region: 'eu-west-1' };
    const [latency] = pointsOf(e, 'coalmine.message.latency', { ...flow, from: 'intended' });
    expect(latency!.attributes).toEqual({ ...flow, from: 'intended' });
    expect(samples.length).toBeGreaterThan(90);
    expect(latency).toMatchObject({
      count: samples.length,
      sum: samples.reduce((a, b) => a + b, 0),
      min: Math.min(...samples),
      max: Math.max(...samples),
    });
    expect(bucketsByIndex(latency!.offset!, latency!.bucketCounts!)).toEqual(
      definitionBuckets(samples, latency!.scale!),
    );
    expect(pointsOf(e, 'coalmine.message.latency', { ...flow, from: 'sent' })[0]!.count).toBe(samples.length);

    const value = (name: string) => pointsOf(e, name, flow)[0]?.value;
    expect(counts.lost).toBe([...dropped].filter((s) => s < counts.expected).length);
    expect(value('coalmine.messages.lost')).toBe(counts.lost);
    expect(value('coalmine.messages.received')).toBe(counts.received);
    expect(value('coalmine.messages.received')).toBe(arrivals.get('new'));
    expect(value('coalmine.messages.in_flight')).toBe(0);
    expect(metricOf(e, 'coalmine.messages.lost')).toMatchObject({
      type: 'sum',
      monotonic: true,
      temporality: 2,
    });
    expect(pointsOf(e, 'coalmine.messages.sent', { canary: 'c1', coalminer: 'eu' })[0]!.value).toBe(sent);
    expect(pointsOf(e, 'coalmine.transport.up')).toEqual([
      expect.objectContaining({
        attributes: { transport: 'memory', url: 'memory://otlp-sink-pair' },
        value: 1,
      }),
    ]);
  });

  describe('a collector that fails', () => {
    it('is not retried on 500, and the failure is counted and logged without the API key', async () => {
      const lines: string[] = [];
      const { sink, registry } = make({ headers: { 'x-api-key': 'secret-key-value' } }, lineLogger(lines));
      receiver.behave({ type: 'status', status: 500, message: 'disk full' });
      const before = receiver.requests;
      sink.observeProbe(probe('db', 'tcp', ok(1)));
      expect(await sink.flush()).toMatchObject({ ok: false, reason: 'http_status', attempts: 1 });
      expect(receiver.requests - before).toBe(1);
      const text = await registry.metrics();
      expect(text).toContain('coalmine_otlp_export_failures_total{reason="http_status"} 1');
      expect(text).toContain('coalmine_otlp_exports_total 1');
      expect(lines.join('\n')).toContain('HTTP 500: disk full');
      expect(lines.join('\n')).not.toContain('secret-key-value');
    });

    it('is retried on 503 with Retry-After, at most three times within the timeout', async () => {
      const { sink, registry } = make({ timeoutMs: 3000 });
      receiver.behave({ type: 'status', status: 503, retryAfter: '0' });
      const before = receiver.requests;
      sink.observeProbe(probe('db', 'tcp', ok(1)));
      expect(await sink.flush()).toMatchObject({ ok: false, reason: 'http_status', attempts: 3 });
      expect(receiver.requests - before).toBe(3);
      expect(await registry.metrics()).toContain(
        'coalmine_otlp_export_failures_total{reason="http_status"} 1',
      );
    });

    it('that answers in time after a 503 gets the export', async () => {
      const lines: string[] = [];
      const { sink, registry } = make({ timeoutMs: 3000 }, lineLogger(lines));
      sink.observeProbe(probe('db', 'tcp', ok(1)));
      receiver.behave({ type: 'status', status: 500 });
      await sink.flush();
      // Retry in 1 s, says the collector; it is back before then.
      receiver.behave({ type: 'status', status: 503, retryAfter: '1' });
      setTimeout(() => receiver.behave({ type: 'ok' }), 200);
      expect(await sink.flush()).toMatchObject({ ok: true });
      expect(await registry.metrics()).toMatch(/coalmine_otlp_last_success_timestamp_seconds 1763900000\n/);
      expect(lines.at(-1)).toMatch(/exporting to .* again, after 1 failed exports/);
    });

    it('that hangs is given up at the timeout, counted, and never holds up recording', async () => {
      const { sink, registry } = make({ timeoutMs: 300 });
      receiver.behave({ type: 'hang' });
      const started = performance.now();
      const exporting = sink.flush();
      // While the export waits, measurements still go in at once.
      const t0 = performance.now();
      for (let i = 0; i < 1000; i++) sink.observeProbe(probe('db', 'tcp', ok(1)));
      expect(performance.now() - t0).toBeLessThan(200);
      expect(await exporting).toMatchObject({ ok: false, reason: 'timeout' });
      expect(performance.now() - started).toBeGreaterThanOrEqual(290);
      expect(performance.now() - started).toBeLessThan(1500);
      expect(await registry.metrics()).toContain('coalmine_otlp_export_failures_total{reason="timeout"} 1');
    });

    it('that is down is a connection failure, retried within the timeout', async () => {
      const closed: Server = createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const { port } = closed.address() as { port: number };
      await new Promise((r) => closed.close(r));
      const registry = new Registry();
      const sink = new OtlpSink(
        { ...config(receiver), url: `http://127.0.0.1:${port}/v1/metrics`, timeoutMs: 3000 },
        { registry, clock, version: '1', hostName: 'h' },
      );
      sinks.push(sink);
      expect(await sink.flush()).toMatchObject({ ok: false, reason: 'connection', attempts: 3 });
      expect(await registry.metrics()).toContain(
        'coalmine_otlp_export_failures_total{reason="connection"} 1',
      );
    });

    it('that rejects some points is a success with the rejected points counted', async () => {
      const lines: string[] = [];
      const { sink, registry } = make({ protocol: 'http/json' }, lineLogger(lines));
      receiver.behave({ type: 'ok', rejected: { points: 5, message: 'out of order' } });
      sink.observeProbe(probe('db', 'tcp', ok(1)));
      expect(await sink.flush()).toMatchObject({ ok: true, rejectedDataPoints: 5 });
      expect(await registry.metrics()).toContain('coalmine_otlp_rejected_points_total 5');
      expect(lines.at(-1)).toContain('rejected 5 data points: out of order');
    });
  });

  it('on close, cuts a hanging export short, flushes once, and is idempotent', async () => {
    const { sink } = make({ timeoutMs: 400 });
    receiver.behave({ type: 'hang' });
    sink.observeProbe(probe('db', 'tcp', ok(1)));
    const hanging = sink.flush();
    await sleep(50);
    receiver.behave({ type: 'ok' });
    // The hanging export arrived (it is the answer that never comes).
    const before = receiver.exports.length;
    const started = performance.now();
    await Promise.all([sink.close(), sink.close()]);
    expect(performance.now() - started).toBeLessThan(400);
    expect(await hanging).toMatchObject({ ok: false, reason: 'closed' });
    expect(receiver.exports.length - before).toBe(1);
    expect(await sink.flush()).toMatchObject({ ok: false, reason: 'closed' });
  });
});

describe('OtlpSink over HTTPS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coalmine-otlp-https-'));
  const server = selfSignedCert(dir, 'collector');
  const client = selfSignedCert(dir, 'agent', { subject: '/CN=coalmine-agent', san: '' });
  const receivers: OtlpReceiver[] = [];
  const sinks: OtlpSink[] = [];
  afterAll(async () => {
    await Promise.all(sinks.map((s) => s.close()));
    await Promise.all(receivers.map((r) => r.close()));
    rmSync(dir, { recursive: true, force: true });
  });
  const exportTo = async (receiver: OtlpReceiver, tls: OtlpConfig['tls']) => {
    const sink = new OtlpSink(config(receiver, { timeoutMs: 1000, ...(tls && { tls }) }), {
      registry: new Registry(),
      clock,
      version: '9.8.7',
    });
    sinks.push(sink);
    sink.observeProbe(probe('web', 'http', ok(3)));
    return sink.flush();
  };

  it('trusts the CA it is given, and refuses an unknown certificate at once (no retries)', async () => {
    const receiver = await startOtlpReceiver({ tls: { cert: server.cert, key: server.key } });
    receivers.push(receiver);
    expect(receiver.url).toMatch(/^https:/);
    expect(await exportTo(receiver, { ca: server.cert, rejectUnauthorized: true })).toMatchObject({
      ok: true,
    });
    expect(receiver.exports).toHaveLength(1);
    const refused = await exportTo(receiver, undefined);
    expect(refused).toMatchObject({ ok: false, reason: 'connection', attempts: 1 });
    expect((refused as { message: string }).message).toMatch(/SELF_SIGNED/);
    expect(await exportTo(receiver, { rejectUnauthorized: false })).toMatchObject({ ok: true });
    expect(receiver.exports).toHaveLength(2);
  });

  it('presents a client certificate to a collector that demands one (mTLS)', async () => {
    const receiver = await startOtlpReceiver({
      tls: { cert: server.cert, key: server.key, clientCa: client.cert },
    });
    receivers.push(receiver);
    expect(
      await exportTo(receiver, {
        ca: server.cert,
        cert: client.cert,
        key: client.key,
        rejectUnauthorized: true,
      }),
    ).toMatchObject({ ok: true });
    expect(await exportTo(receiver, { ca: server.cert, rejectUnauthorized: true })).toMatchObject({
      ok: false,
    });
    expect(receiver.exports).toHaveLength(1);
  });
});
