import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load.js';
import { ConfigError } from '../../core/errors.js';
import { parseKeyValueList } from './config.js';

const otlpOf = (yaml: string, env: NodeJS.ProcessEnv = {}) => parseConfig(yaml, 'c.yaml', env).otlp;

function problemsOf(yaml: string, env: NodeJS.ProcessEnv = {}): readonly string[] {
  try {
    parseConfig(yaml, 'c.yaml', env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('accepted');
}

describe('otlp config', () => {
  it('is off without an otlp section, whatever the environment says', () => {
    expect(otlpOf('targets: []', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })).toBeUndefined();
  });

  it('has the OpenTelemetry defaults', () => {
    expect(otlpOf('otlp: { endpoint: "http://127.0.0.1:4318" }')).toEqual({
      url: 'http://127.0.0.1:4318/v1/metrics',
      protocol: 'http/protobuf',
      headers: {},
      intervalMs: 60_000,
      timeoutMs: 10_000,
      compression: 'none',
      resource: {},
      maxBuckets: 160,
      maxSeries: 2000,
    });
  });

  it('appends v1/metrics to a base endpoint, keeping its path, and takes metricsEndpoint as it is', () => {
    expect(otlpOf('otlp: { endpoint: "https://otlp.example/otlp/" }')?.url).toBe(
      'https://otlp.example/otlp/v1/metrics',
    );
    expect(
      otlpOf('otlp: { endpoint: "http://a:4318", metricsEndpoint: "http://b:9999/custom/path" }')?.url,
    ).toBe('http://b:9999/custom/path');
  });

  it('takes the endpoint from OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, then OTEL_EXPORTER_OTLP_ENDPOINT; the file wins', () => {
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };
    expect(otlpOf('otlp: {}', base)?.url).toBe('http://collector:4318/v1/metrics');
    expect(
      otlpOf('otlp: {}', { ...base, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:1/metrics' })?.url,
    ).toBe('http://m:1/metrics');
    expect(otlpOf('otlp: { endpoint: "http://file:4318" }', base)?.url).toBe('http://file:4318/v1/metrics');
  });

  it('merges headers: OTEL_EXPORTER_OTLP_HEADERS, then the metrics variable, then the file, by name in any case', () => {
    const cfg = otlpOf('otlp: { endpoint: "http://c:4318", headers: { X-Tenant: file } }', {
      OTEL_EXPORTER_OTLP_HEADERS: 'api-key=abc%3D%3D, x-tenant=env ,x-scope=all',
      OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'X-Scope=metrics',
    });
    expect(cfg?.headers).toEqual({ 'api-key': 'abc==', 'X-Tenant': 'file', 'X-Scope': 'metrics' });
  });

  it('builds the resource from OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME over it, and the file over both', () => {
    const env = {
      OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs,deployment.environment=prod,team=a%20b',
      OTEL_SERVICE_NAME: 'canary-fleet',
    };
    expect(otlpOf('otlp: { endpoint: "http://c:4318" }', env)?.resource).toEqual({
      'service.name': 'canary-fleet',
      'deployment.environment': 'prod',
      team: 'a b',
    });
    expect(
      otlpOf('otlp: { endpoint: "http://c:4318", resource: { deployment.environment: staging } }', env)
        ?.resource['deployment.environment'],
    ).toBe('staging');
  });

  it('reads protocol, compression, timeout and interval from the standard variables', () => {
    expect(
      otlpOf('otlp: { endpoint: "http://c:4318" }', {
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
        OTEL_EXPORTER_OTLP_TIMEOUT: '3000',
        OTEL_METRIC_EXPORT_INTERVAL: '15000',
      }),
    ).toMatchObject({ protocol: 'http/json', compression: 'gzip', timeoutMs: 3000, intervalMs: 15_000 });
  });

  it('keeps the default timeout below a short interval', () => {
    expect(otlpOf('otlp: { endpoint: "http://c:4318", interval: 2s }')?.timeoutMs).toBe(1800);
  });

  it('names the variable that is wrong', () => {
    expect(
      problemsOf('otlp: { endpoint: "http://c:4318" }', {
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_EXPORTER_OTLP_TIMEOUT: '10s',
        OTEL_EXPORTER_OTLP_HEADERS: 'novalue',
      }),
    ).toEqual([
      'environment variable OTEL_EXPORTER_OTLP_PROTOCOL: OTLP over gRPC is not supported: use http/protobuf (the collector listens on 4318 for it) or http/json',
      'environment variable OTEL_EXPORTER_OTLP_HEADERS: expected key=value pairs separated by commas (got "novalue")',
      'environment variable OTEL_EXPORTER_OTLP_TIMEOUT: expected a whole number of milliseconds, like 10000 (got "10s")',
    ]);
    expect(problemsOf('otlp: {}', { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toEqual([
      'environment variable OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// or https:// URL (got "collector:4318")',
    ]);
  });

  it('parses key=value lists with percent-decoding', () => {
    expect(parseKeyValueList('a=1,b=x%2Cy, c = z ')).toEqual({ a: '1', b: 'x,y', c: 'z' });
    expect(parseKeyValueList('a=%E0%A4%A')).toBe('the value of a is not valid percent-encoding');
  });

  describe('tls', () => {
    const dir = mkdtempSync(join(tmpdir(), 'coalmine-otlp-tls-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const file = (name: string) => {
      const f = join(dir, name);
      writeFileSync(f, `${name} contents`);
      return f;
    };
    const [ca, cert, key] = [file('ca.pem'), file('client.pem'), file('client.key')];
    const https = 'otlp: { endpoint: "https://collector:4318"';

    it('reads the files the section names', () => {
      const tls = otlpOf(
        `${https}, tls: { caFile: "${ca}", certFile: "${cert}", keyFile: "${key}", serverName: c } }`,
      )?.tls;
      expect(tls).toEqual({
        ca: Buffer.from('ca.pem contents'),
        cert: Buffer.from('client.pem contents'),
        key: Buffer.from('client.key contents'),
        rejectUnauthorized: true,
        servername: 'c',
      });
      expect(otlpOf(`${https}, tls: { insecureSkipVerify: true } }`)?.tls).toEqual({
        rejectUnauthorized: false,
      });
      expect(otlpOf(`${https} }`)?.tls).toBeUndefined();
    });

    it('takes OTEL_EXPORTER_OTLP_CERTIFICATE, _CLIENT_CERTIFICATE and _CLIENT_KEY, the metrics ones first', () => {
      const tls = otlpOf(`${https} }`, {
        OTEL_EXPORTER_OTLP_CERTIFICATE: join(dir, 'missing.pem'),
        OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE: ca,
        OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: cert,
        OTEL_EXPORTER_OTLP_CLIENT_KEY: key,
      })?.tls;
      expect(tls?.ca?.toString()).toBe('ca.pem contents');
      expect(tls?.cert?.toString()).toBe('client.pem contents');
      expect(tls?.key?.toString()).toBe('client.key contents');
    });

    it('says which file it cannot read, a certificate without its key, and TLS on an http endpoint', () => {
      expect(problemsOf(`${https}, tls: { caFile: "${join(dir, 'nope.pem')}" } }`)).toEqual([
        expect.stringMatching(/otlp\.tls\.caFile: cannot read .*nope\.pem: ENOENT/),
      ]);
      expect(problemsOf(`${https} }`, { OTEL_EXPORTER_OTLP_CERTIFICATE: join(dir, 'gone.pem') })).toEqual([
        expect.stringMatching(
          /environment variable OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read .*gone\.pem: ENOENT/,
        ),
      ]);
      expect(problemsOf(`${https} }`, { OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: cert }).join('\n')).toMatch(
        /needs both its certificate and its key/,
      );
      expect(problemsOf(`otlp: { endpoint: "http://c:4318", tls: { caFile: "${ca}" } }`).join('\n')).toMatch(
        /TLS settings need an https:\/\/ endpoint/,
      );
    });
  });
});
