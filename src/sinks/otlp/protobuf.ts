import {
  AGGREGATION_TEMPORALITY_CUMULATIVE,
  type Attributes,
  type ExportResponse,
  type HistogramPoint,
  type MetricData,
  type MetricsExport,
  type NumberPoint,
} from './model.js';

/**
 * OTLP/HTTP's binary body: ExportMetricsServiceRequest in protobuf, written by hand for the handful of
 * messages we send. Field numbers are those of opentelemetry-proto's collector/metrics/v1,
 * metrics/v1, common/v1 and resource/v1 (stable since OTLP 1.0); the test receiver decodes our bytes
 * with its own definitions of them.
 */

const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;

const utf8 = new TextEncoder();

/** A growable protobuf writer. Nested messages are written in place and their length put in front. */
export class ProtoWriter {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  private pos = 0;

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  private tag(field: number, wire: number): void {
    this.rawVarint(field * 8 + wire);
  }

  /** A non-negative integer up to 2^53. */
  private rawVarint(n: number): void {
    this.room(10);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  uint(field: number, n: number): void {
    this.tag(field, VARINT);
    this.rawVarint(n);
  }

  sint32(field: number, n: number): void {
    this.tag(field, VARINT);
    this.rawVarint(((n << 1) ^ (n >> 31)) >>> 0);
  }

  bool(field: number, b: boolean): void {
    this.uint(field, b ? 1 : 0);
  }

  /** fixed64 or sfixed64 of a non-negative value. */
  fixed64(field: number, n: number | bigint): void {
    this.tag(field, FIXED64);
    this.room(8);
    this.view.setBigUint64(this.pos, typeof n === 'bigint' ? n : BigInt(n), true);
    this.pos += 8;
  }

  double(field: number, v: number): void {
    this.tag(field, FIXED64);
    this.room(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  string(field: number, s: string): void {
    const bytes = utf8.encode(s);
    this.tag(field, LEN);
    this.rawVarint(bytes.length);
    this.room(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Packed repeated uint64 of non-negative integers. */
  packedUints(field: number, values: readonly number[]): void {
    this.message(field, () => {
      for (const v of values) this.rawVarint(v);
    });
  }

  message(field: number, body: () => void): void {
    this.tag(field, LEN);
    const start = this.pos;
    body();
    const length = this.pos - start;
    let size = 1;
    for (let n = length; n >= 0x80; n = Math.floor(n / 0x80)) size++;
    this.room(size);
    this.buf.copyWithin(start + size, start, this.pos);
    this.pos += size;
    // The length goes in the gap; room() is not called here, since it copies only up to pos.
    let p = start;
    let n = length;
    for (; n >= 0x80; n = Math.floor(n / 0x80)) this.buf[p++] = (n % 0x80) | 0x80;
    this.buf[p] = n;
  }
}

function attributes(w: ProtoWriter, field: number, attrs: Attributes): void {
  for (const [key, value] of attrs)
    w.message(field, () => {
      w.string(1, key);
      w.message(2, () => (typeof value === 'string' ? w.string(1, value) : w.bool(2, value)));
    });
}

function numberPoint(w: ProtoWriter, p: NumberPoint, integer: boolean): void {
  attributes(w, 7, p.attributes);
  if (p.startTimeNs !== undefined) w.fixed64(2, p.startTimeNs);
  w.fixed64(3, p.timeNs);
  // as_int is sfixed64; our integers (counts) are never negative, so fixed64's bytes are the same.
  if (integer) w.fixed64(6, p.value);
  else w.double(4, p.value);
}

function histogramPoint(w: ProtoWriter, p: HistogramPoint): void {
  const h = p.histogram;
  attributes(w, 1, p.attributes);
  w.fixed64(2, p.startTimeNs);
  w.fixed64(3, p.timeNs);
  w.fixed64(4, h.count);
  w.double(5, h.sum);
  if (h.scale !== 0) w.sint32(6, h.scale);
  if (h.zeroCount !== 0) w.fixed64(7, h.zeroCount);
  if (h.positive.bucketCounts.length > 0)
    w.message(8, () => {
      if (h.positive.offset !== 0) w.sint32(1, h.positive.offset);
      w.packedUints(2, h.positive.bucketCounts);
    });
  if (h.min !== undefined) w.double(12, h.min);
  if (h.max !== undefined) w.double(13, h.max);
}

function metric(w: ProtoWriter, m: MetricData): void {
  w.string(1, m.name);
  if (m.description) w.string(2, m.description);
  if (m.unit) w.string(3, m.unit);
  switch (m.type) {
    case 'gauge':
      w.message(5, () => m.points.forEach((p) => w.message(1, () => numberPoint(w, p, m.integer))));
      break;
    case 'sum':
      w.message(7, () => {
        m.points.forEach((p) => w.message(1, () => numberPoint(w, p, m.integer)));
        w.uint(2, AGGREGATION_TEMPORALITY_CUMULATIVE);
        if (m.monotonic) w.bool(3, true);
      });
      break;
    case 'exponentialHistogram':
      w.message(10, () => {
        m.points.forEach((p) => w.message(1, () => histogramPoint(w, p)));
        w.uint(2, AGGREGATION_TEMPORALITY_CUMULATIVE);
      });
      break;
  }
}

/** ExportMetricsServiceRequest with one resource and one scope. */
export function encodeProtobuf(e: MetricsExport): Uint8Array {
  const w = new ProtoWriter();
  w.message(1, () => {
    w.message(1, () => attributes(w, 1, e.resource));
    w.message(2, () => {
      w.message(1, () => {
        w.string(1, e.scope.name);
        w.string(2, e.scope.version);
      });
      for (const m of e.metrics) w.message(2, () => metric(w, m));
    });
  });
  return w.finish();
}

/** Reads the top-level fields of a message we only need a few scalars from; skips the rest. */
function readFields(bytes: Uint8Array, onField: (field: number, value: number | Uint8Array) => void): void {
  let pos = 0;
  const varint = (): number => {
    let n = 0;
    let mul = 1;
    for (;;) {
      if (pos >= bytes.length) throw new Error('truncated varint');
      const b = bytes[pos++]!;
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 0x80;
    }
  };
  while (pos < bytes.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === VARINT) onField(field, varint());
    else if (wire === FIXED64) pos += 8;
    else if (wire === LEN) {
      const len = varint();
      if (pos + len > bytes.length) throw new Error('truncated field');
      onField(field, bytes.subarray(pos, pos + len));
      pos += len;
    } else if (wire === 5) pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

const utf8Decoder = new TextDecoder();

/** ExportMetricsServiceResponse: its partial_success, if the collector rejected some points. */
export function decodeProtobufResponse(bytes: Uint8Array): ExportResponse {
  const out: ExportResponse = { rejectedDataPoints: 0, errorMessage: '' };
  readFields(bytes, (field, value) => {
    if (field !== 1 || typeof value === 'number') return;
    readFields(value, (f, v) => {
      if (f === 1 && typeof v === 'number') out.rejectedDataPoints = v;
      if (f === 2 && typeof v !== 'number') out.errorMessage = utf8Decoder.decode(v);
    });
  });
  return out;
}

/** The message of a google.rpc.Status, the body OTLP/HTTP collectors send with an error status. */
export function decodeProtobufStatusMessage(bytes: Uint8Array): string | undefined {
  let message: string | undefined;
  readFields(bytes, (field, value) => {
    if (field === 2 && typeof value !== 'number') message = utf8Decoder.decode(value);
  });
  return message;
}
