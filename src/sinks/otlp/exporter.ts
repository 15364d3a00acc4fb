import type { Logger } from '../../core/log.js';
import http from 'node:http';
import https from 'node:https';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { isTlsErrorCode } from '../../probes/net-errors.js';
import { backoffMs, errorMessage, redactUrl } from '../../transports/base.js';
import type { OtlpConfig } from './config.js';
import { decodeJsonResponse, decodeJsonStatusMessage, encodeJson } from './json.js';
import type { ExportResponse, MetricsExport } from './model.js';
import { decodeProtobufResponse, decodeProtobufStatusMessage, encodeProtobuf } from './protobuf.js';

const gzip = promisify(gzipCallback);

/** Attempts per export: the first and two retries, all within the export timeout. */
const MAX_ATTEMPTS = 3;
/** A collector's answer is read up to this much; the rest is dropped. */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** While exports keep failing, the log says so again at most this often. */
const REMIND_MS = 10 * 60_000;
/** OTLP/HTTP: these statuses mean "try again later"; every other failure status is final. */
const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);

export type FailureReason = 'timeout' | 'connection' | 'http_status' | 'error';

export type ExportOutcome =
  | { ok: true; rejectedDataPoints: number; attempts: number }
  | { ok: false; reason: FailureReason; message: string; attempts: number }
  /** The agent stopped while this export was running: not a failure, the final export follows. */
  | { ok: false; reason: 'closed'; message: string; attempts: number };

export interface OtlpExporterOptions {
  /** The agent's Prometheus registry, for the exporter's own counters. */
  registry: Registry;
  /** The payload of one export, collected when it starts. */
  collect: () => MetricsExport;
  log?: Logger;
  /** Sent as User-Agent. */
  userAgent: string;
  /** Wall clock ms, for the last-success gauge. */
  nowMs?: () => number;
  random?: () => number;
}

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: Buffer;
}

class AttemptError extends Error {
  constructor(
    readonly reason: FailureReason,
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/**
 * Pushes metrics to an OTLP/HTTP endpoint every interval. It never blocks or throws into the agent: one
 * export at a time, each bounded by the timeout (retries of 429/502/503/504 and connection failures
 * included, honouring Retry-After within it), then given up and counted. Sums and histograms are
 * cumulative, so a dropped export loses nothing the next one does not carry.
 */
export class OtlpExporter {
  private readonly agent: http.Agent;
  private readonly target: string;
  private readonly exports: Counter;
  private readonly failures: Counter<'reason'>;
  private readonly rejected: Counter;
  private readonly lastSuccess: Gauge;
  private readonly duration: Histogram;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ExportOutcome> | undefined;
  private abort: AbortController | undefined;
  private closed: Promise<void> | undefined;
  private failingSince = 0;
  private failedExports = 0;
  private lastLogMs = 0;

  constructor(
    private readonly config: OtlpConfig,
    private readonly opts: OtlpExporterOptions,
  ) {
    const url = new URL(config.url);
    this.target = redactUrl(config.url);
    // One kept-alive connection: exports are sequential, and the agent owns (and destroys) it.
    const agentOptions = { keepAlive: true, maxSockets: 1 };
    this.agent =
      url.protocol === 'https:'
        ? new https.Agent({ ...agentOptions, ...config.tls })
        : new http.Agent(agentOptions);
    const registers = [opts.registry];
    this.exports = new Counter({
      name: 'coalmine_otlp_exports_total',
      help: 'OTLP metric exports finished, successful or not',
      registers,
    });
    this.failures = new Counter({
      name: 'coalmine_otlp_export_failures_total',
      help: 'OTLP metric exports given up after their retries, by reason: timeout, connection, http_status or error',
      labelNames: ['reason'],
      registers,
    });
    this.rejected = new Counter({
      name: 'coalmine_otlp_rejected_points_total',
      help: 'Data points the OTLP endpoint accepted the export of but rejected (partial success)',
      registers,
    });
    this.lastSuccess = new Gauge({
      name: 'coalmine_otlp_last_success_timestamp_seconds',
      help: 'Unix time of the last OTLP export the endpoint accepted',
      registers,
    });
    this.duration = new Histogram({
      name: 'coalmine_otlp_export_duration_seconds',
      help: 'How long OTLP metric exports took, retries included',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    for (const reason of ['timeout', 'connection', 'http_status', 'error'] as const)
      this.failures.inc({ reason }, 0);
  }

  start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.exportNow(), this.config.intervalMs);
    this.timer.unref();
  }

  /** Runs one export now, or joins the one running. Never rejects. */
  exportNow(): Promise<ExportOutcome> {
    if (this.closed)
      return Promise.resolve({ ok: false, reason: 'closed', message: 'exporter closed', attempts: 0 });
    return this.exportOnce();
  }

  private exportOnce(): Promise<ExportOutcome> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Stops the timer, waits for a running export (cut short), sends once more, and closes the connection. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      clearInterval(this.timer);
      this.abort?.abort();
      await this.running;
      await this.exportOnce();
      this.agent.destroy();
    })();
    return this.closed;
  }

  private async run(): Promise<ExportOutcome> {
    const started = performance.now();
    const deadline = started + this.config.timeoutMs;
    const abort = (this.abort = new AbortController());
    let outcome: ExportOutcome;
    let attempts = 0;
    try {
      const body = await this.body();
      for (;;) {
        attempts++;
        try {
          const answer = await this.post(body, deadline - performance.now(), abort.signal);
          const response = this.readResponse(answer);
          outcome = { ok: true, rejectedDataPoints: response.rejectedDataPoints, attempts };
          if (response.rejectedDataPoints > 0 || response.errorMessage) this.onPartial(response);
          break;
        } catch (err) {
          if (!(err instanceof AttemptError)) throw err;
          const left = deadline - performance.now();
          const wait = err.retryAfterMs ?? backoffMs(attempts - 1, 250, 5000, this.opts.random);
          if (!err.retryable || attempts >= MAX_ATTEMPTS || wait >= left || abort.signal.aborted) {
            outcome = { ok: false, reason: err.reason, message: err.message, attempts };
            break;
          }
          await sleep(wait, abort.signal);
        }
      }
    } catch (err) {
      // Encoding or compressing failed: a bug, but the agent goes on.
      outcome = { ok: false, reason: 'error', message: errorMessage(err), attempts };
    }
    if (!outcome.ok && abort.signal.aborted) return { ...outcome, reason: 'closed' };
    this.duration.observe((performance.now() - started) / 1000);
    this.exports.inc();
    if (outcome.ok) this.onSuccess();
    else this.onFailure(outcome.reason, outcome.message);
    return outcome;
  }

  private async body(): Promise<Buffer> {
    const payload = this.opts.collect();
    const raw =
      this.config.protocol === 'http/json'
        ? Buffer.from(encodeJson(payload))
        : (() => {
            const bytes = encodeProtobuf(payload);
            return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          })();
    return this.config.compression === 'gzip' ? gzip(raw) : raw;
  }

  private post(body: Buffer, timeoutMs: number, signal: AbortSignal): Promise<Answer> {
    if (timeoutMs <= 0)
      return Promise.reject(new AttemptError('timeout', 'no time left for the request', false));
    const json = this.config.protocol === 'http/json';
    return new Promise<Answer>((resolve, reject) => {
      const url = new URL(this.config.url);
      const request = (url.protocol === 'https:' ? https : http).request(url, {
        method: 'POST',
        agent: this.agent,
        headers: {
          'user-agent': this.opts.userAgent,
          ...this.config.headers,
          'content-type': json ? 'application/json' : 'application/x-protobuf',
          'content-length': body.length,
          ...(this.config.compression === 'gzip' ? { 'content-encoding': 'gzip' } : {}),
        },
      });
      let settled = false;
      const fail = (e: AttemptError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        request.destroy();
        reject(e);
      };
      const timer = setTimeout(
        () => fail(new AttemptError('timeout', `no answer within ${Math.round(timeoutMs)} ms`, false)),
        timeoutMs,
      );
      const onAbort = () => fail(new AttemptError('timeout', 'cut short: the agent is stopping', false));
      signal.addEventListener('abort', onAbort, { once: true });
      request.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code;
        // A certificate we do not trust (or a handshake we cannot make) will not be fixed a second later:
        // no retry within this export.
        const retry = !(code && isTlsErrorCode(code));
        fail(new AttemptError('connection', code ? `${code}: ${err.message}` : err.message, retry));
      });
      request.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < MAX_RESPONSE_BYTES) chunks.push(c);
          size += c.length;
        });
        res.on('error', (err) => fail(new AttemptError('connection', err.message, true)));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          const retryAfter = res.headers['retry-after'];
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
            body: Buffer.concat(chunks).subarray(0, MAX_RESPONSE_BYTES),
          });
        });
      });
      request.end(body);
    });
  }

  /** A 2xx answer's partial success; anything else thrown as an AttemptError saying what the endpoint said. */
  private readResponse(a: Answer): ExportResponse {
    const json = this.config.protocol === 'http/json';
    if (a.status >= 200 && a.status < 300) {
      try {
        return json ? decodeJsonResponse(a.body.toString('utf8')) : decodeProtobufResponse(a.body);
      } catch {
        return { rejectedDataPoints: 0, errorMessage: '' };
      }
    }
    let said: string | undefined;
    try {
      said = json ? decodeJsonStatusMessage(a.body.toString('utf8')) : decodeProtobufStatusMessage(a.body);
    } catch {
      said = undefined;
    }
    said ??= a.body.toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 200);
    const retryable = RETRYABLE_STATUS.has(a.status);
    throw new AttemptError(
      'http_status',
      `HTTP ${a.status}${said ? `: ${said}` : ''}`,
      retryable,
      retryable ? retryAfterMs(a.retryAfter, this.opts.nowMs?.() ?? Date.now()) : undefined,
    );
  }

  private onPartial(r: ExportResponse): void {
    this.rejected.inc(r.rejectedDataPoints);
    this.opts.log?.warn(
      `otlp: ${this.target} accepted the export but rejected ${r.rejectedDataPoints} data points${r.errorMessage ? `: ${r.errorMessage}` : ''}`,
    );
  }

  private onSuccess(): void {
    const now = this.opts.nowMs?.() ?? Date.now();
    this.lastSuccess.set(now / 1000);
    if (this.failedExports > 0)
      this.opts.log?.info(
        `otlp: exporting to ${this.target} again, after ${this.failedExports} failed exports over ${Math.round((now - this.failingSince) / 1000)} s`,
      );
    this.failedExports = 0;
  }

  private onFailure(reason: FailureReason | 'closed', message: string): void {
    if (reason === 'closed') return;
    this.failures.inc({ reason });
    const now = this.opts.nowMs?.() ?? Date.now();
    if (this.failedExports++ === 0) {
      this.failingSince = now;
      this.lastLogMs = now;
      this.opts.log?.warn(
        `otlp: export to ${this.target} failed (${reason}): ${message}; counting failures in coalmine_otlp_export_failures_total and retrying every ${this.config.intervalMs / 1000} s`,
      );
    } else if (now - this.lastLogMs >= REMIND_MS) {
      this.lastLogMs = now;
      this.opts.log?.warn(
        `otlp: still failing to export to ${this.target} (${this.failedExports} exports so far), last: (${reason}) ${message}`,
      );
    }
  }
}

/** Retry-After in seconds or as an HTTP date, in ms from now; undefined when absent or unreadable. */
export function retryAfterMs(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
