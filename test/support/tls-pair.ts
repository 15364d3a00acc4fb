/**
 * What the TLS broker tests run over a URL: a real canary/coalminer pair through `coalmine pair`
 * (in-process, as pair-cli.test.ts does), and one connect whose failure message they read.
 */
import { expect } from 'vitest';
import { main, type Io } from '../../src/cli/main.js';
import { createTransport } from '../../src/transports/registry.js';

export interface PairSummary {
  sent: number;
  received: number;
  lost: number;
  duplicated: number;
  inFlight: number;
  sendFailed: number;
}

/** Runs `fn` with `env` set in process.env, then puts back what was there (or nothing). */
async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** `coalmine pair URL --rate 100 --duration 1s --json`: its exit code, summary and stderr. */
export async function pairOver(
  url: string,
  env: Record<string, string> = {},
): Promise<{ code: number; summary: PairSummary | undefined; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l), isTty: false };
  return withEnv(env, async () => {
    const code = await main(
      [
        'node',
        'coalmine',
        'pair',
        url,
        '--rate',
        '100',
        '--duration',
        '1s',
        '--loss-timeout',
        '1s',
        '--json',
      ],
      io,
      {},
    );
    const text = out.join('\n');
    return {
      code,
      summary: code === 0 ? (JSON.parse(text) as PairSummary) : undefined,
      err: err.join('\n'),
    };
  });
}

/** Runs a pair over `url` and asserts every ping sent arrived once: ~100 sent, none lost. */
export async function expectCleanPair(url: string, env: Record<string, string> = {}): Promise<void> {
  const r = await pairOver(url, env);
  expect(r.code, r.err).toBe(0);
  const s = r.summary!;
  expect(s.sent).toBeGreaterThanOrEqual(80);
  expect(s.received).toBe(s.sent);
  expect({ lost: s.lost, duplicated: s.duplicated, inFlight: s.inFlight, sendFailed: s.sendFailed }).toEqual({
    lost: 0,
    duplicated: 0,
    inFlight: 0,
    sendFailed: 0,
  });
}

/** The message of the first connect's failure over `url` (it must fail), the transport closed after. */
export async function connectError(url: string, env: Record<string, string> = {}): Promise<string> {
  const t = await withEnv(env, () => createTransport(url, { reconnect: { initialMs: 50, maxMs: 100 } }));
  try {
    const err = await t.connect(AbortSignal.timeout(10_000)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, `${url} connected`).toBeInstanceOf(Error);
    return (err as Error).message;
  } finally {
    await t.close();
  }
}

/** Whether the message ends with exactly this hint after "cannot connect to URL: reason — ". */
export function expectHint(message: string, hint: string): void {
  // `s`: OpenSSL's own text (amqplib passes it on) ends with a newline before the hint.
  expect(message).toMatch(/^cannot connect to \S+: \S.* — /s);
  expect(message.slice(message.lastIndexOf(' — ') + 3)).toBe(hint);
}
