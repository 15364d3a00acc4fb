import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { decodeRequest } from '../../../test/support/otlp-receiver.js';
import { ExponentialHistogram } from './exponential-histogram.js';
import { decodeJsonResponse, decodeJsonStatusMessage, encodeJson } from './json.js';
import type { MetricsExport } from './model.js';
import { decodeProtobufResponse, decodeProtobufStatusMessage, encodeProtobuf } from './protobuf.js';

// A wall-clock time in ns beyond 2^53, so a number on the way would lose digits.
const T0 = 1_763_900_000_123_456_789n;
const T1 = T0 + 60_000_000_000n;

function sample(): MetricsExport {
  const h = new ExponentialHistogram();
  for (const v of [0.001, 0.002, 0.004]) h.record(v);
  const zeros = new ExponentialHistogram();
  zeros.record(0);
  zeros.record(0);
  return {
    resource: [
      ['service.name', 'coalmine'],
      ['host.name', 'hôte-é'],
    ],
    scope: { name: 'coalmine', version: '0.1.0' },
    metrics: [
      {
        type: 'exponentialHistogram',
        name: 'coalmine.probe.duration',
        description: 'Probe durations',
        unit: 's',
        points: [
          {
            attributes: [
              ['target', 'web'],
              ['kind', 'http'],
            ],
            startTimeNs: T0,
            timeNs: T1,
            histogram: h.snapshot(),
          },
          { attributes: [['target', 'zero']], startTimeNs: T0, timeNs: T1, histogram: zeros.snapshot() },
        ],
      },
      {
        type: 'sum',
        name: 'coalmine.messages.received',
        description: '',
        unit: '{message}',
        monotonic: true,
        integer: true,
        points: [{ attributes: [['canary', 'c1']], startTimeNs: T0, timeNs: T1, value: 2 ** 40 + 3 }],
      },
      {
        type: 'gauge',
        name: 'coalmine.probe.success',
        description: 'Last probe succeeded',
        unit: '1',
        integer: false,
        points: [{ attributes: [['otel.metric.overflow', true]], timeNs: T1, value: 0.5 }],
      },
    ],
  };
}

/** What both encodings must decode to. */
const expected = {
  resource: { 'service.name': 'coalmine', 'host.name': 'hôte-é' },
  scope: { name: 'coalmine', version: '0.1.0' },
  metrics: [
    {
      name: 'coalmine.probe.duration',
      description: 'Probe durations',
      unit: 's',
      type: 'exponentialHistogram',
      temporality: 2,
      points: [
        {
          attributes: { target: 'web', kind: 'http' },
          startTimeNs: T0,
          timeNs: T1,
          count: 3,
          // As summed in doubles.
          sum: 0.001 + 0.002 + 0.004,
          min: 0.001,
          max: 0.004,
          scale: 6,
          zeroCount: 0,
          offset: -638,
          bucketCounts: [1, ...Array<number>(63).fill(0), 1, ...Array<number>(63).fill(0), 1],
          negativeBuckets: 0,
        },
        {
          attributes: { target: 'zero' },
          startTimeNs: T0,
          timeNs: T1,
          count: 2,
          sum: 0,
          min: 0,
          max: 0,
          scale: 20,
          zeroCount: 2,
          offset: 0,
          bucketCounts: [],
          negativeBuckets: 0,
        },
      ],
    },
    {
      name: 'coalmine.messages.received',
      description: '',
      unit: '{message}',
      type: 'sum',
      temporality: 2,
      monotonic: true,
      points: [
        { attributes: { canary: 'c1' }, startTimeNs: T0, timeNs: T1, value: 2 ** 40 + 3, asInt: true },
      ],
    },
    {
      name: 'coalmine.probe.success',
      description: 'Last probe succeeded',
      unit: '1',
      type: 'gauge',
      points: [{ attributes: { 'otel.metric.overflow': true }, startTimeNs: 0n, timeNs: T1, value: 0.5 }],
    },
  ],
};

describe('OTLP encoders', () => {
  it('protobuf decodes, with the official field numbers, to exactly what was encoded', () => {
    const got = decodeRequest(Buffer.from(encodeProtobuf(sample())), 'protobuf');
    expect(got).toEqual(expected);
  });

  it('JSON decodes to the same, with 64-bit integers as strings', () => {
    const text = encodeJson(sample());
    expect(text).toContain(`"timeUnixNano":"${T1}"`);
    expect(text).toContain('"asInt":"1099511627779"');
    expect(decodeRequest(Buffer.from(text), 'json')).toEqual(expected);
  });

  it('writes long messages whose lengths take several varint bytes', () => {
    const e = sample();
    const many = Array.from({ length: 3000 }, (_, i) => ({
      attributes: [['target', `t${i}-${'x'.repeat(150)}`] as const],
      timeNs: T1,
      value: i,
    }));
    e.metrics = [
      { type: 'gauge', name: 'g', description: 'd'.repeat(300), unit: '1', integer: false, points: many },
    ];
    const got = decodeRequest(Buffer.from(encodeProtobuf(e)), 'protobuf');
    expect(got.metrics[0]!.description).toHaveLength(300);
    expect(got.metrics[0]!.points).toHaveLength(3000);
    expect(got.metrics[0]!.points[2999]).toMatchObject({
      value: 2999,
      attributes: { target: many[2999]!.attributes[0]![1] },
    });
  });

  it('reads a partial success and an error status in both encodings', () => {
    const root = protobuf.parse(`syntax = "proto3";
      message R { P partial_success = 1; }
      message P { int64 rejected_data_points = 1; string error_message = 2; }
      message S { int32 code = 1; string message = 2; }`).root;
    const R = root.lookupType('R');
    const S = root.lookupType('S');
    const partial = R.encode(
      R.fromObject({ partialSuccess: { rejectedDataPoints: 7, errorMessage: 'too old' } }),
    ).finish();
    expect(decodeProtobufResponse(partial)).toEqual({ rejectedDataPoints: 7, errorMessage: 'too old' });
    expect(decodeProtobufResponse(new Uint8Array())).toEqual({ rejectedDataPoints: 0, errorMessage: '' });
    expect(decodeProtobufStatusMessage(S.encode({ code: 3, message: 'bad metric' }).finish())).toBe(
      'bad metric',
    );
    expect(
      decodeJsonResponse('{"partialSuccess":{"rejectedDataPoints":"7","errorMessage":"too old"}}'),
    ).toEqual({
      rejectedDataPoints: 7,
      errorMessage: 'too old',
    });
    expect(decodeJsonResponse('')).toEqual({ rejectedDataPoints: 0, errorMessage: '' });
    expect(decodeJsonStatusMessage('{"code":16,"message":"no key"}')).toBe('no key');
    expect(decodeJsonStatusMessage('<html>')).toBeUndefined();
  });
});
