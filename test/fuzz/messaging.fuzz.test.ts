import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canaryChannel, coalminerChannel } from '../../src/messaging/channels.js';
import { decode, encode, MESSAGE_TYPES, type Envelope } from '../../src/messaging/envelope.js';
import { create } from '../../src/transports/redis/index.js';
import type { Transport } from '../../src/transports/transport.js';
import { sleep } from '../support/async.js';
import { freePort, waitFor } from '../support/net.js';
import { prng } from '../support/prng.js';
import { redisReachable } from '../support/services.js';

const redisUp = await redisReachable();
const bin = join(import.meta.dirname, '../../bin/coalmine.js');
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const FUZZ_MS = Number(process.env.FUZZ_MS ?? 20_000);

/** The shared fuzz PRNG, with 64-bit values for sequence numbers and run ids. */
function fuzzPrng(seed: number) {
  const r = prng(seed);
  const u64 = () => (BigInt(r.int(2 ** 32)) << 32n) | BigInt(r.int(2 ** 32));
  return { ...r, u64 };
}

const metric = (text: string, name: string, labels: Record<string, string>): number => {
  const want = Object.entries(labels);
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (want.every(([k, v]) => line.includes(`${k}="${v}"`)))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
};

const rssMiB = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}

/**
 * Random and forged envelopes through real Redis at a running agent's coalminers and canaries. One pair
 * signs with a shared secret the fuzzer does not know: anything may be thrown at it. The other does not
 * sign: it gets what an agent must withstand without a secret (garbage, made-up names and runs, heads no
 * rate explains, registrations from strangers). The agent must answer /healthz promptly throughout, keep
 * its memory and /metrics bounded, and count both real flows exactly.
 */
describe.skipIf(!redisUp)(`fuzzing a running agent through real Redis (FUZZ_SEED=${SEED})`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'coalmine-fuzz-'));
  const opened: Transport[] = [];
  afterAll(async () => {
    await Promise.all(opened.map((t) => t.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('stays responsive, bounded and exact', async () => {
    const rnd = fuzzPrng(SEED);
    const prefix = `fuzz${process.pid}`;
    const port = await freePort();
    const config = join(dir, 'agent.yaml');
    writeFileSync(
      config,
      [
        `listen: 127.0.0.1:${port}`,
        `store: { url: "sqlite:${join(dir, 'fuzz.db')}" }`,
        'transports:',
        '  - { name: bus, url: "redis://127.0.0.1:6379" }',
        'canaries:',
        `  - { name: signed, transport: bus, rate: 100, prefix: ${prefix}, secretEnv: FUZZ_SECRET }`,
        `  - { name: open, transport: bus, rate: 100, prefix: ${prefix}, maxCoalminers: 8 }`,
        'coalminers:',
        `  - { name: eu, transport: bus, register: [signed], prefix: ${prefix}, secretEnv: FUZZ_SECRET }`,
        `  - { name: us, transport: bus, register: [open], prefix: ${prefix} }`,
        '',
      ].join('\n'),
    );
    const child = spawn(process.execPath, [bin, 'run', '--config', config], {
      env: { ...process.env, FUZZ_SECRET: 'the fuzzer does not know this', COALMINE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const scrape = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const healthMs = async () => {
      const t0 = performance.now();
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(5000) });
      await res.text();
      return performance.now() - t0;
    };
    try {
      await waitFor('both flows receiving', async () => {
        const text = await scrape();
        const ok = ['eu', 'us'].every(
          (c) => metric(text, 'coalmine_messages_received_total', { coalminer: c }) >= 50,
        );
        return ok ? true : undefined;
      });
      const baselineHealth: number[] = [];
      for (let i = 0; i < 20; i++) baselineHealth.push(await healthMs());
      const baselineMetrics = (await scrape()).length;
      const baselineRss = rssMiB(child.pid!);

      // The attacker reads the channels, as anyone on the broker can, to learn names and run ids.
      const attacker = create('redis://127.0.0.1:6379', { clientName: 'fuzz-attacker' });
      opened.push(attacker);
      await attacker.connect(AbortSignal.timeout(10_000));
      const sniffed: { channel: string; e: Envelope; bytes: Uint8Array }[] = [];
      // What the attacker itself published, until it sees it come back: only the agent's own messages
      // are sniffed for mutation. A mutated copy that came back and was mutated again could flip the same
      // bit back and publish an exact replay of a signed ping, which the coalminer rightly counts as a
      // duplicate (the cause of the one duplicate about every second run showed).
      const ownInFlight = new Map<string, number>();
      const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
      const listen = new AbortController();
      for (const ch of [
        coalminerChannel(prefix, 'eu'),
        coalminerChannel(prefix, 'us'),
        canaryChannel(prefix, 'signed'),
        canaryChannel(prefix, 'open'),
      ]) {
        void (async () => {
          for await (const d of attacker.subscribe(ch, listen.signal)) {
            const key = hex(d.payload);
            const own = ownInFlight.get(key);
            if (own !== undefined) {
              if (own > 1) ownInFlight.set(key, own - 1);
              else ownInFlight.delete(key);
              continue;
            }
            try {
              sniffed.push({ channel: ch, e: decode(d.payload), bytes: Uint8Array.from(d.payload) });
              if (sniffed.length > 2000) sniffed.splice(0, 1000);
            } catch {
              // our own garbage
            }
          }
        })();
      }
      await sleep(1500);
      const openRun = sniffed.find((s) => s.e.type === 'ping' && s.e.canary === 'open')?.e.runId;
      expect(openRun, 'a ping of the open canary was seen').toBeDefined();
      // The real head, from real pings only (the attacker sees its own forgeries on the channel too).
      const openHead = () =>
        sniffed.reduce(
          (m, s) =>
            s.e.type === 'ping' && s.e.runId === openRun && s.e.seq < 2n ** 32n && s.e.seq > m ? s.e.seq : m,
          0n,
        );

      const names = ['signed', 'open', 'eu', 'us', 'x', 'a'.repeat(64), 'fuzz-name'];
      const randomName = () => (rnd.next() < 0.5 ? rnd.pick(names) : `r${rnd.int(1e9)}`);
      const now = () => BigInt(Date.now()) * 1_000_000n;
      const envelope = (over: Partial<Envelope>): Envelope => ({
        type: rnd.pick(MESSAGE_TYPES),
        canary: randomName(),
        coalminer: randomName(),
        runId: rnd.next() < 0.5 ? rnd.u64() : BigInt(rnd.int(10)),
        seq: rnd.pick([0n, 1n, 2n ** 53n, 2n ** 64n - 1n, rnd.u64(), BigInt(rnd.int(1000))]),
        intendedNs: rnd.next() < 0.5 ? now() : rnd.u64(),
        sentNs: now(),
        intervalNs: rnd.pick([0n, 1n, 10_000_000n, rnd.u64()]),
        ...(rnd.next() < 0.3 ? { stamps: [rnd.u64(), rnd.u64(), rnd.u64()].slice(0, rnd.int(4)) } : {}),
        ...(rnd.next() < 0.2 ? { failed: [[BigInt(rnd.int(100)), rnd.u64()] as [bigint, bigint]] } : {}),
        ...(rnd.next() < 0.1 ? { echo: true } : {}),
        ...over,
      });
      /** One forged message: where it goes and its bytes. */
      const forge = (): [string, Uint8Array] => {
        const [channel, bytes] = forgeOne();
        // Everything a coalminer gets is foreign, but confirms under the open canary's name may make runs
        // of their own (which no ping of the real run ever reaches); those no rate explains are foreign.
        if (channel.includes('.coalminer.')) {
          let confirm = false;
          try {
            const e = decode(bytes);
            confirm = e.type === 'confirm' && e.canary === 'open' && channel.endsWith('.us');
          } catch {
            // foreign
          }
          if (confirm) openConfirms++;
          else toCoalminers++;
        }
        return [channel, bytes];
      };
      let toCoalminers = 0;
      let openConfirms = 0;
      const forgeOne = (): [string, Uint8Array] => {
        const r = rnd.next();
        const ch = rnd.pick([
          coalminerChannel(prefix, 'eu'),
          coalminerChannel(prefix, 'us'),
          canaryChannel(prefix, 'signed'),
          canaryChannel(prefix, 'open'),
        ]);
        if (r < 0.15) return [ch, rnd.bytes(rnd.int(300))];
        if (r < 0.25) {
          // A mutated copy of a real signed message: the mac no longer matches.
          const real = sniffed.filter((s) => s.e.canary === 'signed' || s.channel.endsWith('signed'));
          const s = real.length > 0 ? rnd.pick(real) : undefined;
          if (s) {
            // A copy (Buffer's slice() is a view): flipping the sniffed bytes in place would let a second
            // flip of the same bit restore them, and publish an exact replay of a signed ping.
            const b = Uint8Array.from(s.bytes);
            const i = 5 + rnd.int(Math.max(1, b.length - 5));
            b[i]! ^= 1 << rnd.int(8);
            return [s.channel, b];
          }
        }
        if (r < 0.45) {
          // Heads no rate explains, under the open flow's real run id.
          const e = envelope({
            type: 'ping',
            canary: 'open',
            coalminer: 'us',
            runId: openRun!,
            intervalNs: 10_000_000n,
            // Past what the rate explains, and below 2^64 (a wrapped seq would be a replay, which only a
            // signature can tell from a broker's duplicate).
            seq: openHead() + 2n ** BigInt(20 + rnd.int(43)),
          });
          delete e.failed;
          return [coalminerChannel(prefix, 'us'), encode(e, false)];
        }
        if (r < 0.6) {
          // Registrations and clock syncs from strangers at either canary.
          const canary = rnd.pick(['signed', 'open']);
          const e = envelope({
            type: rnd.pick(['register', 'clocksync', 'echo', 'unregister'] as const),
            canary,
            coalminer: `stranger${rnd.int(500)}`,
          });
          return [canaryChannel(prefix, canary), encode(e, rnd.next() < 0.2)];
        }
        // Anything at all, addressed at the signed pair (which must refuse all of it), or at the open
        // pair with a run id the open canary does not have.
        const signedSide = rnd.next() < 0.5;
        const e = envelope(
          signedSide
            ? { canary: 'signed', coalminer: 'eu' }
            : { canary: rnd.next() < 0.5 ? 'open' : randomName(), coalminer: 'us', runId: rnd.u64() | 1n },
        );
        if (!signedSide && e.type !== 'ping' && e.type !== 'confirm') e.type = 'ping';
        const channel = signedSide
          ? rnd.pick([coalminerChannel(prefix, 'eu'), canaryChannel(prefix, 'signed')])
          : coalminerChannel(prefix, 'us');
        return [channel, encode(e, rnd.next() < 0.2)];
      };

      const health: number[] = [];
      let forged = 0;
      const deadline = Date.now() + FUZZ_MS;
      const probing = (async () => {
        while (Date.now() < deadline) {
          health.push(await healthMs());
          await sleep(50);
        }
      })();
      while (Date.now() < deadline) {
        const batch: Promise<unknown>[] = [];
        // About 4,000 a second: enough to find what a flood breaks, without starving the tests that run
        // beside this one on a 2-core machine.
        for (let i = 0; i < 100; i++) {
          const [ch, bytes] = forge();
          const key = hex(bytes);
          ownInFlight.set(key, (ownInFlight.get(key) ?? 0) + 1);
          batch.push(attacker.publish(ch, bytes).catch(() => undefined));
        }
        await Promise.all(batch);
        forged += batch.length;
        await sleep(25);
      }
      await probing;
      listen.abort();
      // Let in-flight pings land and the last gaps be judged.
      await sleep(1500);
      const text = await scrape();
      if (process.env.FUZZ_DUMP) writeFileSync(process.env.FUZZ_DUMP, text + '\n' + stderr);
      const rss = rssMiB(child.pid!);
      const detail = `seed ${SEED}, ${forged} forged; health p50 ${percentile(health, 50).toFixed(1)} ms p99 ${percentile(health, 99).toFixed(1)} ms (baseline p99 ${percentile(baselineHealth, 99).toFixed(1)}); rss ${baselineRss.toFixed(0)} -> ${rss.toFixed(0)} MiB; /metrics ${baselineMetrics} -> ${text.length} bytes`;
      console.log(detail);
      expect(forged, detail).toBeGreaterThan(10_000);
      // Responsive: a health check answers within 100 ms, allowing for a loaded machine's baseline.
      expect(percentile(health, 95), detail).toBeLessThan(Math.max(100, 5 * percentile(baselineHealth, 95)));
      // Bounded: no forged name becomes a label, and memory stays near where it was.
      // Strangers may register with the open canary, but at most maxCoalminers are pinged and as many
      // retired ones keep series of their own; none reaches the signed canary or any coalminer.
      const strangers = new Set([...text.matchAll(/coalminer="(stranger\d+)"/g)].map((m) => m[0]));
      expect(strangers.size, detail).toBeLessThanOrEqual(16);
      expect(text, detail).not.toMatch(/canary="signed",coalminer="stranger|canary="(r\d+|x|fuzz-name)"/);
      expect(text.length - baselineMetrics, detail).toBeLessThan(64 * 1024);
      expect(rss - baselineRss, detail).toBeLessThan(200);
      // Exact: each real flow lost, duplicated and reordered nothing, and received what was sent.
      for (const [canary, coalminer] of [
        ['signed', 'eu'],
        ['open', 'us'],
      ] as const) {
        const l = { canary, coalminer };
        const sent = metric(text, 'coalmine_messages_sent_total', l);
        const received = metric(text, 'coalmine_messages_received_total', l);
        const flow = `${canary}->${coalminer}: sent ${sent} received ${received}; ${detail}`;
        expect(sent, flow).toBeGreaterThan(FUZZ_MS / 20);
        for (const m of ['lost', 'reordered', 'late', 'stale', 'send_failed_arrived'])
          expect(metric(text, `coalmine_messages_${m}_total`, l), `${m} ${flow}`).toBe(0);
        expect(metric(text, 'coalmine_messages_duplicated_total', l), `duplicated ${flow}`).toBe(0);
        // A ping or two may be between the broker's ack to the canary and the coalminer.
        expect(Math.abs(sent - received), flow).toBeLessThanOrEqual(5);
      }
      // Each forged message a coalminer got is counted foreign once (a few may still be queued).
      const foreign = metric(text, 'coalmine_messages_foreign_total', {});
      expect(foreign, detail).toBeLessThanOrEqual(toCoalminers + openConfirms);
      expect(foreign, detail).toBeGreaterThanOrEqual(toCoalminers * 0.99);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited, stderr.slice(-2000)).toBe(0);
    expect(stderr, 'no stray rejection or crash').not.toMatch(/unhandled|uncaught|RangeError|TypeError/i);
  }, 120_000);
});
