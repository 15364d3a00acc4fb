import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { LatencyHistogram } from '../stats/histogram.js';
import type { HistogramJSON } from './types.js';

/**
 * Compact binary forms for what the store keeps per bucket: unsigned LEB128 varints, delta-coded
 * histogram bucket indices, and a rollup *block* (all the 1-minute buckets of one hour, or the 1-hour
 * buckets of one day) deflated when that helps. JSON would cost ~10x: a year of 1-minute rollups of one
 * target has to fit in a few MB.
 */

class Writer {
  private buf = Buffer.allocUnsafe(256);
  private n = 0;

  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.n + k));
    this.buf.copy(next, 0, 0, this.n);
    this.buf = next;
  }

  /** An unsigned integer below 2^53 (arithmetic, not bit operations, so above 2^31 works). */
  uint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`codec: not an unsigned integer: ${v}`);
    this.room(8);
    while (v >= 0x80) {
      this.buf[this.n++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.n++] = v;
  }

  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.uint(b.length);
    this.room(b.length);
    b.copy(this.buf, this.n);
    this.n += b.length;
  }

  /** A float64, little-endian (probe values: any number, exactly). */
  f64(v: number): void {
    this.room(8);
    this.buf.writeDoubleLE(v, this.n);
    this.n += 8;
  }

  bytes(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.n));
  }
}

class Reader {
  private i = 0;
  constructor(private readonly buf: Uint8Array) {}

  get offset(): number {
    return this.i;
  }

  uint(): number {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (this.i >= this.buf.length) throw new RangeError('codec: truncated data');
      const b = this.buf[this.i++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 0x80;
    }
  }

  str(): string {
    const len = this.uint();
    if (this.i + len > this.buf.length) throw new RangeError('codec: truncated data');
    const s = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.i, len).toString('utf8');
    this.i += len;
    return s;
  }

  f64(): number {
    if (this.i + 8 > this.buf.length) throw new RangeError('codec: truncated data');
    const v = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.i, 8).readDoubleLE(0);
    this.i += 8;
    return v;
  }
}

// ---------------------------------------------------------------- histograms

function writeHistogram(w: Writer, j: HistogramJSON): void {
  w.uint(j.n);
  if (j.n === 0) return;
  // Histograms of our own hold integers; rounding keeps a foreign one (fractional ns) encodable.
  const min = Math.round(j.min);
  w.uint(min);
  // One sample (a probe every minute or slower): the value says it all.
  if (j.n === 1) return;
  w.uint(Math.max(0, Math.round(j.max) - min));
  w.uint(Math.max(0, Math.round(j.sum) - j.n * min));
  const b = [...j.b].sort((x, y) => x[0] - y[0]);
  w.uint(b.length);
  let prev = 0;
  for (const [i, c] of b) {
    w.uint(i - prev);
    w.uint(c);
    prev = i;
  }
}

function readHistogram(r: Reader): LatencyHistogram {
  const n = r.uint();
  const h = new LatencyHistogram();
  if (n === 0) return h;
  const min = r.uint();
  if (n === 1) {
    h.record(min);
    return h;
  }
  const max = min + r.uint();
  const sum = r.uint() + n * min;
  const nb = r.uint();
  const b: [number, number][] = [];
  let prev = 0;
  for (let k = 0; k < nb; k++) {
    prev += r.uint();
    b.push([prev, r.uint()]);
  }
  return LatencyHistogram.fromJSON({ b, n, min, max, sum });
}

/** A histogram on its own (a raw flow row's latencies). */
export function encodeHistogram(j: HistogramJSON): Buffer {
  const w = new Writer();
  writeHistogram(w, j);
  return w.bytes();
}

export function decodeHistogram(buf: Uint8Array): LatencyHistogram {
  return readHistogram(new Reader(buf));
}

/** Histogram of integer nanoseconds; exact integers so the codec's sums stay exact. */
export function histogramJSON(h: LatencyHistogram): HistogramJSON {
  const j = h.toJSON();
  return j.n === 0 ? { b: [], n: 0, min: 0, max: 0, sum: 0 } : j;
}

// ---------------------------------------------------------------- rollup blocks

/** Phase totals of a bucket: how many runs had the phase and their summed nanoseconds. */
export type PhaseSums = Map<string, { n: number; sumNs: number }>;

/** One rollup bucket: counts (meaning fixed by the series type), a latency histogram, phase sums. */
export interface Bucket {
  /** Start of the bucket (Unix ms). */
  time: number;
  counts: number[];
  hist: LatencyHistogram;
  phases?: PhaseSums;
}

// Phase names we expect, stored as a small number; anything else is stored by name.
const PHASES = ['resolve', 'connect', 'tls', 'processing', 'transfer', 'setup', 'rtt', 'request', 'exchange'];

// Formats 3 and 4 (plain, deflated) hold as many counts per bucket as the series type had then, which the
// reader must be told; 5 and 6 write their count of counts first, so a type can gain counts and the
// blocks written before still decode (the counts they lack read 0).
const FORMAT_PLAIN_V1 = 3;
const FORMAT_DEFLATE_V1 = 4;
const FORMAT_PLAIN = 5;
const FORMAT_DEFLATE = 6;

/**
 * The middle of LatencyHistogram bucket i, as src/stats/histogram.ts defines its buckets (values below
 * 2048 ns exact, then 1024 log-linear sub-buckets per power of two): within 0.05 % of every value in it.
 */
export function representative(i: number): number {
  if (i < 2048) return i;
  const e = Math.floor((i - 2048) / 1024) + 1;
  const sub = ((i - 2048) % 1024) + 1024;
  return sub * 2 ** e + (2 ** e - 1) / 2;
}

const zigzag = (v: number): number => (v >= 0 ? v * 2 : -v * 2 - 1);
const unzigzag = (v: number): number => (v % 2 === 0 ? v / 2 : -(v + 1) / 2);

/**
 * A block: the buckets of [blockStart, blockStart + blockMs), each bucketMs wide.
 *
 * Rollups are where a year of history has to stay small (a year of 1-minute buckets of one target must
 * fit in a few MB), so a block is stored column-wise in three streams that deflate well: structure
 * (slots, counts, sizes, phase ids: mostly repeats), histogram bucket indices (delta-coded), and phase
 * sums (microseconds). A rollup histogram keeps its buckets only: min, max and sum come back as bucket
 * midpoints, so rollup percentiles, max and mean are within 0.05 % (raw rows stay exact).
 */
export function encodeBlock(
  blockStart: number,
  bucketMs: number,
  nCounts: number,
  buckets: readonly Bucket[],
): Buffer {
  const meta = new Writer();
  const idx = new Writer();
  const sums = new Writer();
  meta.uint(buckets.length);
  let prevSlot = -1;
  for (const b of buckets) {
    const slot = Math.floor((b.time - blockStart) / bucketMs);
    if (slot <= prevSlot) throw new RangeError('codec: buckets out of order');
    meta.uint(slot - prevSlot - 1);
    prevSlot = slot;
    for (let k = 0; k < nCounts; k++) meta.uint(b.counts[k] ?? 0);
    const j = b.hist.toJSON();
    meta.uint(j.n);
    if (j.n > 0) {
      const sorted = [...j.b].sort((x, y) => x[0] - y[0]);
      const ones = sorted.every(([, c]) => c === 1);
      meta.uint(sorted.length * 2 + (ones ? 1 : 0));
      let prev = 0;
      for (const [i, c] of sorted) {
        idx.uint(i - prev);
        if (!ones) idx.uint(c);
        prev = i;
      }
    }
    const phases = b.phases ? [...b.phases] : [];
    meta.uint(phases.length);
    const base = b.counts[0] ?? 0;
    for (const [name, { n, sumNs }] of phases) {
      const id = PHASES.indexOf(name);
      meta.uint(id + 1);
      if (id < 0) meta.str(name);
      meta.uint(zigzag(base - n));
      sums.uint(Math.round(sumNs / 1000));
    }
  }
  const body = new Writer();
  body.uint(nCounts);
  for (const part of [meta.bytes(), idx.bytes()]) body.uint(part.length);
  const raw = Buffer.concat([body.bytes(), meta.bytes(), idx.bytes(), sums.bytes()]);
  const packed = raw.length > 64 ? deflateRawSync(raw, { level: 9 }) : undefined;
  if (packed && packed.length < raw.length) return Buffer.concat([Buffer.from([FORMAT_DEFLATE]), packed]);
  return Buffer.concat([Buffer.from([FORMAT_PLAIN]), raw]);
}

/**
 * The buckets of a block, each with `nCounts` counts: counts the block does not hold read 0, counts
 * beyond `nCounts` (a newer release's) are skipped. `legacyCounts` is how many counts a format 3/4 block
 * of this series type holds (the type's count before it first grew).
 */
export function decodeBlock(
  buf: Uint8Array,
  blockStart: number,
  bucketMs: number,
  nCounts: number,
  legacyCounts = nCounts,
): Bucket[] {
  const format = buf[0];
  if (
    format !== FORMAT_DEFLATE &&
    format !== FORMAT_PLAIN &&
    format !== FORMAT_DEFLATE_V1 &&
    format !== FORMAT_PLAIN_V1
  )
    throw new RangeError(`codec: unknown block format ${format}`);
  const deflated = format === FORMAT_DEFLATE || format === FORMAT_DEFLATE_V1;
  const raw = deflated ? inflateRawSync(buf.subarray(1)) : buf.subarray(1);
  const head = new Reader(raw);
  const stored = format === FORMAT_PLAIN || format === FORMAT_DEFLATE ? head.uint() : legacyCounts;
  const metaLen = head.uint();
  const idxLen = head.uint();
  const start = head.offset;
  const meta = new Reader(raw.subarray(start, start + metaLen));
  const idx = new Reader(raw.subarray(start + metaLen, start + metaLen + idxLen));
  const sums = new Reader(raw.subarray(start + metaLen + idxLen));
  const count = meta.uint();
  const out: Bucket[] = [];
  let slot = -1;
  for (let k = 0; k < count; k++) {
    slot += meta.uint() + 1;
    const counts = new Array<number>(nCounts).fill(0);
    for (let c = 0; c < stored; c++) {
      const v = meta.uint();
      if (c < nCounts) counts[c] = v;
    }
    const n = meta.uint();
    let hist = new LatencyHistogram();
    if (n > 0) {
      const shape = meta.uint();
      const ones = shape % 2 === 1;
      const nb = Math.floor(shape / 2);
      const b: [number, number][] = [];
      let prev = 0;
      let sum = 0;
      for (let q = 0; q < nb; q++) {
        prev += idx.uint();
        const c = ones ? 1 : idx.uint();
        b.push([prev, c]);
        sum += representative(prev) * c;
      }
      hist = LatencyHistogram.fromJSON({
        b,
        n,
        min: representative(b[0]![0]),
        max: representative(b.at(-1)![0]),
        sum,
      });
    }
    const np = meta.uint();
    let phases: PhaseSums | undefined;
    if (np > 0) {
      phases = new Map();
      const base = counts[0] ?? 0;
      for (let p = 0; p < np; p++) {
        const id = meta.uint();
        const name = id === 0 ? meta.str() : PHASES[id - 1];
        if (name === undefined) throw new RangeError(`codec: unknown phase id ${id}`);
        phases.set(name, { n: base - unzigzag(meta.uint()), sumNs: sums.uint() * 1000 });
      }
    }
    const bucket: Bucket = { time: blockStart + slot * bucketMs, counts, hist };
    if (phases) bucket.phases = phases;
    out.push(bucket);
  }
  return out;
}

// ---------------------------------------------------------------- raw probe chunks

/** One probe run as a raw chunk holds it: whole ms, whole ns, null for what the run did not have. */
export interface StoredProbeRun {
  time: number;
  ok: boolean;
  durationNs: number;
  /** Nanoseconds per phase, or null when the run reported none. */
  phases: Record<string, number> | null;
  errorCode: string | null;
  errorMessage: string | null;
  values: Record<string, number> | null;
}

const FORMAT_PROBE_CHUNK = 1;
const RUN_OK = 1;
const RUN_CODE = 2;
const RUN_MESSAGE = 4;
const RUN_VALUES = 8;
/** Phase presence is a bit mask held in an unsigned varint: at most 52 bits stay exact. */
const MAX_CHUNK_PHASES = 52;

/**
 * Raw probe runs of one series, in time order, as one value: the names (phases, value keys, error
 * strings) once per chunk and each run as varints (time delta, flags, a phase bit mask, duration and
 * phase ns, dictionary indices). A 2 ms run of 5 phases takes 23 bytes, where one row per run with
 * its JSON took 373 (PostgreSQL, with its index). `runs` must be sorted by time.
 */
export function encodeProbeChunk(runs: readonly StoredProbeRun[]): Buffer {
  if (runs.length === 0) throw new RangeError('codec: an empty probe chunk');
  const phaseIds = new Map<string, number>();
  const keyIds = new Map<string, number>();
  const strIds = new Map<string, number>();
  const id = (m: Map<string, number>, k: string) => {
    let v = m.get(k);
    if (v === undefined) m.set(k, (v = m.size));
    return v;
  };
  for (const r of runs) {
    if (r.phases) for (const k of Object.keys(r.phases)) id(phaseIds, k);
    if (r.values) for (const k of Object.keys(r.values)) id(keyIds, k);
    if (r.errorCode !== null) id(strIds, r.errorCode);
    if (r.errorMessage !== null) id(strIds, r.errorMessage);
  }
  if (phaseIds.size > MAX_CHUNK_PHASES)
    throw new RangeError(`codec: ${phaseIds.size} phase names in one chunk (at most ${MAX_CHUNK_PHASES})`);
  const w = new Writer();
  w.uint(FORMAT_PROBE_CHUNK);
  w.uint(runs.length);
  w.uint(zigzag(runs[0]!.time));
  w.uint(phaseIds.size);
  for (const name of phaseIds.keys()) {
    const known = PHASES.indexOf(name);
    w.uint(known + 1);
    if (known < 0) w.str(name);
  }
  w.uint(keyIds.size);
  for (const k of keyIds.keys()) w.str(k);
  w.uint(strIds.size);
  for (const k of strIds.keys()) w.str(k);
  const phaseOrder = [...phaseIds.keys()];
  let prev = runs[0]!.time;
  for (const r of runs) {
    if (r.time < prev) throw new RangeError('codec: probe runs out of time order');
    w.uint(r.time - prev);
    prev = r.time;
    const values = r.values && Object.keys(r.values).length > 0 ? r.values : null;
    w.uint(
      (r.ok ? RUN_OK : 0) |
        (r.errorCode !== null ? RUN_CODE : 0) |
        (r.errorMessage !== null ? RUN_MESSAGE : 0) |
        (values ? RUN_VALUES : 0),
    );
    w.uint(r.durationNs);
    if (phaseOrder.length > 0) {
      let mask = 0;
      if (r.phases) for (const k of Object.keys(r.phases)) mask += 2 ** phaseIds.get(k)!;
      w.uint(mask);
      if (r.phases) for (const k of phaseOrder) if (k in r.phases) w.uint(r.phases[k]!);
    }
    if (r.errorCode !== null) w.uint(strIds.get(r.errorCode)!);
    if (r.errorMessage !== null) w.uint(strIds.get(r.errorMessage)!);
    if (values) {
      const entries = Object.entries(values);
      w.uint(entries.length);
      for (const [k, v] of entries) {
        w.uint(keyIds.get(k)!);
        w.f64(v);
      }
    }
  }
  return w.bytes();
}

export function decodeProbeChunk(buf: Uint8Array): StoredProbeRun[] {
  const r = new Reader(buf);
  const format = r.uint();
  if (format !== FORMAT_PROBE_CHUNK) throw new RangeError(`codec: unknown probe chunk format ${format}`);
  const n = r.uint();
  let time = unzigzag(r.uint());
  const phaseNames: string[] = [];
  for (let k = r.uint(); k > 0; k--) {
    const known = r.uint();
    const name = known === 0 ? r.str() : PHASES[known - 1];
    if (name === undefined) throw new RangeError(`codec: unknown phase id ${known}`);
    phaseNames.push(name);
  }
  const keys: string[] = [];
  for (let k = r.uint(); k > 0; k--) keys.push(r.str());
  const strs: string[] = [];
  for (let k = r.uint(); k > 0; k--) strs.push(r.str());
  const str = (i: number) => {
    const s = strs[i];
    if (s === undefined) throw new RangeError(`codec: unknown string ${i}`);
    return s;
  };
  const out: StoredProbeRun[] = new Array<StoredProbeRun>(n);
  for (let i = 0; i < n; i++) {
    time += r.uint();
    const flags = r.uint();
    const durationNs = r.uint();
    let phases: Record<string, number> | null = null;
    if (phaseNames.length > 0) {
      let mask = r.uint();
      for (let k = 0; mask > 0; k++, mask = Math.floor(mask / 2))
        if (mask % 2 === 1) (phases ??= {})[phaseNames[k]!] = r.uint();
    }
    const errorCode = flags & RUN_CODE ? str(r.uint()) : null;
    const errorMessage = flags & RUN_MESSAGE ? str(r.uint()) : null;
    let values: Record<string, number> | null = null;
    if (flags & RUN_VALUES) {
      values = {};
      for (let k = r.uint(); k > 0; k--) {
        const key = keys[r.uint()];
        if (key === undefined) throw new RangeError('codec: unknown value key');
        values[key] = r.f64();
      }
    }
    out[i] = { time, ok: (flags & RUN_OK) !== 0, durationNs, phases, errorCode, errorMessage, values };
  }
  return out;
}
