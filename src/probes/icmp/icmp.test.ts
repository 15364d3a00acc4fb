import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../core/clock.js';
import type { ProbeResult } from '../../core/types.js';
import { haveNativeAddon } from '../../../test/support/require.js';
import icmp from './index.js';
import { ADDON_FILE, loadIcmpAddon, socketOpenError } from './native.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const addonPath = `${root}${ADDON_FILE}`;
const built = haveNativeAddon(existsSync(addonPath), 'ICMP');
const isRoot = process.getuid?.() === 0;
const dgramAllowed = (() => {
  // The kernel allows unprivileged ICMP sockets to groups inside this range (default "1 0": nobody).
  const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8')
    .trim()
    .split(/\s+/)
    .map(Number);
  const gids = [process.getgid?.() ?? -1, ...(process.getgroups?.() ?? [])];
  return gids.some((g) => g >= lo! && g <= hi!);
})();
const canOpenIcmp = built && (isRoot || dgramAllowed);
const hasCommand = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

async function ping(
  target: string,
  opts: Record<string, unknown> = {},
  timeoutMs = 5000,
  signal?: AbortSignal,
) {
  return icmp.run(target, icmp.options.parse(opts), {
    clock: systemClock,
    timeoutMs,
    signal: signal ?? AbortSignal.timeout(timeoutMs),
  });
}

function expectHealthyRound(r: ProbeResult, family: 4 | 6) {
  expect(r.ok, JSON.stringify(r.ok ? r.detail : r.error)).toBe(true);
  const v = r.values!;
  expect(v.ip_protocol).toBe(family);
  expect(v.icmp_packets_sent).toBe(5);
  expect(v.icmp_packets_received).toBe(5);
  expect(v.icmp_packet_loss_ratio).toBe(0);
  expect(v.icmp_rtt_min_seconds).toBeGreaterThan(0);
  expect(v.icmp_rtt_min_seconds).toBeLessThanOrEqual(v.icmp_rtt_median_seconds!);
  expect(v.icmp_rtt_median_seconds).toBeLessThanOrEqual(v.icmp_rtt_max_seconds!);
  expect(v.icmp_rtt_mean_seconds).toBeGreaterThanOrEqual(v.icmp_rtt_min_seconds!);
  expect(v.icmp_rtt_max_seconds).toBeLessThan(0.005);
  expect(v.icmp_rtt_stddev_seconds).toBeGreaterThanOrEqual(0);
  expect(v.icmp_reply_hop_limit).toBeGreaterThan(0);
  expect(Number(r.phases.rtt) / 1e9).toBeCloseTo(v.icmp_rtt_median_seconds!, 9);
  expect(r.phases.setup).toBeGreaterThan(0n);
  expect(r.detail).toMatchObject({ sent: 5, received: 5, lost: 0, duplicates: 0, inFlight: 0 });
  expect((r.detail!.rttsMs as unknown[]).every((x) => typeof x === 'number')).toBe(true);
}

describe('icmp target validation', () => {
  it('accepts host names and IP literals, and says what a target looks like otherwise', () => {
    for (const ok of ['example.com', 'localhost', '192.0.2.1', '::1', '[2001:db8::1]', 'my_host.lan.']) {
      expect(icmp.validateTarget(ok), ok).toBeUndefined();
    }
    for (const bad of ['example.com:80', 'http://example.com', '1.2.3', '', 'a b']) {
      expect(icmp.validateTarget(bad), bad).toMatch(/host name or an IPv4\/IPv6 address/);
    }
  });

  it('rejects options out of range', () => {
    expect(icmp.options.safeParse({ packets: 0 }).success).toBe(false);
    expect(icmp.options.safeParse({ packetIntervalMs: 5 }).success).toBe(false);
    expect(icmp.options.safeParse({ socketMode: 'stream' }).success).toBe(false);
    expect(icmp.options.parse({})).toMatchObject({ packets: 5, packetIntervalMs: 200, payloadBytes: 56 });
  });
});

describe('icmp without the native module', () => {
  it('says how to build it instead of crashing', () => {
    const load = loadIcmpAddon('/nonexistent/build/Release/coalmine_icmp.node');
    expect(load.ok).toBe(false);
    if (!load.ok) {
      expect(load.error.code).toBe('unsupported');
      expect(load.error.message).toContain('npm run build:native');
    }
  });
});

describe.runIf(built && hasCommand('setpriv'))('icmp as an unprivileged user', () => {
  it('explains the three ways to allow ICMP when no socket type is permitted', () => {
    // A child process without root or capabilities, in this network namespace (ping_group_range
    // decides whether its datagram socket is allowed).
    const script = `const { IcmpSocket } = require(${JSON.stringify(addonPath)});
      try { new IcmpSocket(4, 'auto', {}, () => {}).close(); console.log('{}') }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, rawCode: e.rawCode })) }`;
    const out = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, '-e', script],
      { encoding: 'utf8', timeout: 10_000 },
    );
    expect(out.status, out.stderr).toBe(0);
    const err = JSON.parse(out.stdout) as { code?: string; rawCode?: string; message?: string };
    const range = readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8').trim().split(/\s+/).map(Number);
    if (65534 >= range[0]! && 65534 <= range[1]!) {
      expect(err.code).toBeUndefined(); // the datagram socket is allowed to everyone here
      return;
    }
    expect(err.rawCode).toBe('EPERM');
    const pe = socketOpenError(err, 'auto', 4);
    expect(pe.code).toBe('permission');
    expect(pe.message).toContain('setcap cap_net_raw+ep');
    expect(pe.message).toContain("sysctl -w net.ipv4.ping_group_range='0 2147483647'");
  });
});

describe.runIf(canOpenIcmp)('icmp echo on loopback', () => {
  it('pings 127.0.0.1 five times with no loss and sub-5 ms round trips', async () => {
    const r = await ping('127.0.0.1', { packetIntervalMs: 20 });
    expectHealthyRound(r, 4);
    expect(r.phases.resolve).toBe(0n);
  });

  it('pings ::1 five times with no loss and sub-5 ms round trips', async () => {
    const r = await ping('::1', { packetIntervalMs: 20 });
    expectHealthyRound(r, 6);
  });

  it('resolves a host name and times the lookup', async () => {
    const r = await ping('localhost', { packets: 2, packetIntervalMs: 10, ipProtocol: 'ip4' });
    expect(r.ok).toBe(true);
    expect(r.values?.ip_protocol).toBe(4);
    expect(r.detail?.address).toBe('127.0.0.1');
    expect(r.phases.resolve).toBeGreaterThan(0n);
  });

  it.runIf(isRoot)('works with a raw socket, with TTL, DF and a large payload', async () => {
    const r = await ping('127.0.0.1', {
      socketMode: 'raw',
      packetIntervalMs: 10,
      ttl: 7,
      dontFragment: true,
      payloadBytes: 1400,
    });
    expectHealthyRound(r, 4);
    expect(r.detail?.socketMode).toBe('raw');
    // Loopback delivers locally without decrementing, so the reply carries the kernel's default TTL.
    expect(r.values?.icmp_reply_hop_limit).toBe(64);
  });

  it('datagram mode works exactly when ping_group_range allows it, and says how to allow it', async () => {
    const r = await ping('127.0.0.1', { socketMode: 'dgram', packetIntervalMs: 10 });
    if (dgramAllowed) {
      expectHealthyRound(r, 4);
      expect(r.detail?.socketMode).toBe('dgram');
    } else {
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.code).toBe('permission');
        expect(r.error.message).toContain("sysctl -w net.ipv4.ping_group_range='0 2147483647'");
      }
    }
  });

  it('does not count requests that the timeout left unsent as sent or lost', async () => {
    // Requests are due at 0, 100, 200, 300 and 400 ms; the run may last 250 ms.
    const r = await ping('127.0.0.1', { packets: 5, packetIntervalMs: 100 }, 250);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('timeout');
    expect(r.error.message).toContain('only 3 of 5 echo requests fit in the 250 ms timeout');
    expect(r.values).toMatchObject({
      icmp_packets_sent: 3,
      icmp_packets_received: 3,
      icmp_packet_loss_ratio: 0,
    });
    expect(Number(r.durationNs) / 1e6).toBeLessThan(250);
  });

  it('returns promptly with what it has when the run is cancelled', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 120);
    const t0 = performance.now();
    const r = await ping('127.0.0.1', { packets: 10, packetIntervalMs: 50 }, 10_000, ac.signal);
    expect(performance.now() - t0).toBeLessThan(250);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('timeout');
    expect(r.values?.icmp_packets_sent).toBe(3);
    expect(r.values?.icmp_packets_received).toBe(3);
  });

  it('runs many rounds at once without mixing up their replies', async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        ping(i % 2 ? '127.0.0.1' : '::1', { packets: 3, packetIntervalMs: 10, payloadBytes: 8 + i }),
      ),
    );
    for (const r of results) {
      expect(r.ok).toBe(true);
      expect(r.values).toMatchObject({ icmp_packets_sent: 3, icmp_packets_received: 3 });
      expect(r.detail).toMatchObject({ duplicates: 0, corrupted: 0 });
    }
  });

  it('survives sockets that are closed twice, used after close, or dropped while open', () => {
    const script = `const { IcmpSocket } = require(${JSON.stringify(addonPath)});
      let replies = 0;
      for (let i = 0; i < 400; i++) {
        const s = new IcmpSocket(i % 2 ? 4 : 6, 'auto', {}, () => replies++);
        s.send(i % 2 ? '127.0.0.1' : '::1', i, Buffer.alloc(16));
        if (i % 4 === 0) { s.close(); s.close(); }
      }
      const s = new IcmpSocket(4, 'auto', {}, () => {});
      s.close();
      let code;
      try { s.send('127.0.0.1', 1, Buffer.alloc(1)); } catch (e) { code = e.code; }
      setTimeout(() => { gc(); setTimeout(() => { gc(); console.log(JSON.stringify({ replies, code, closed: s.closed })); }, 50); }, 50);`;
    const out = spawnSync(process.execPath, ['--expose-gc', '-e', script], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(out.status, out.stderr).toBe(0);
    const res = JSON.parse(out.stdout) as { replies: number; code: string; closed: boolean };
    expect(res.replies).toBe(300); // every socket left open heard its own reply, and only its own
    expect(res.code).toBe('ERR_SOCKET_CLOSED');
    expect(res.closed).toBe(true);
  });

  it('lets a worker thread exit with sockets still open', () => {
    // Node unloads a worker's addons when it exits: sockets must be closed before that, or libuv
    // calls back into unmapped code.
    const worker = `const { IcmpSocket } = require(${JSON.stringify(addonPath)});
      globalThis.open = [];
      for (let i = 0; i < 20; i++) open.push(new IcmpSocket(4, 'auto', {}, () => {}));
      open[0].send('127.0.0.1', 1, Buffer.alloc(8));
      require('node:worker_threads').parentPort.postMessage('ready');`;
    const script = `const { Worker } = require('node:worker_threads');
      let left = 5;
      const next = () => {
        const w = new Worker(${JSON.stringify(worker)}, { eval: true });
        w.on('message', () => setTimeout(() => w.terminate(), 5));
        w.on('exit', () => (--left > 0 ? next() : console.log('done')));
      };
      next();`;
    const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 });
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout.trim()).toBe('done');
  });

  it.runIf(hasCommand('fping'))('measures the same round-trip times as fping', async () => {
    const fping = spawnSync('fping', ['-C', '5', '-q', '-p', '20', '127.0.0.1'], { encoding: 'utf8' });
    const theirs = fping.stderr
      .split(':')[1]!
      .trim()
      .split(/\s+/)
      .map(Number)
      .sort((a, b) => a - b);
    const r = await ping('127.0.0.1', { packetIntervalMs: 20 });
    expectHealthyRound(r, 4);
    const oursMs = r.values!.icmp_rtt_median_seconds! * 1e3;
    // Both are tens of microseconds on loopback; ours leaves out the time the reply waited for
    // the event loop, so it must never be much above fping's.
    expect(oursMs).toBeLessThan(theirs[2]! + 0.5);
  });
});

describe.skipIf(!built || !isRoot || !hasCommand('unshare') || !hasCommand('ip'))(
  'icmp in a private network namespace',
  () => {
    it('passes the datagram-socket and packet-loss tests', () => {
      // ping_group_range and icmp_echo_ignore_all are per network namespace: the child changes them
      // in a namespace of its own that only has a loopback interface, and nothing outside it.
      const vitest = fileURLToPath(new URL('../../../node_modules/vitest/vitest.mjs', import.meta.url));
      const out = spawnSync(
        'unshare',
        [
          '-n',
          'sh',
          '-c',
          `ip link set lo up && echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range && exec "${process.execPath}" "${vitest}" run src/probes/icmp/icmp.netns.test.ts`,
        ],
        {
          cwd: root,
          encoding: 'utf8',
          timeout: 15_000,
          env: { PATH: process.env.PATH, HOME: process.env.HOME, COALMINE_ICMP_NETNS: '1', NO_COLOR: '1' },
        },
      );
      expect(out.status, `${out.stdout}\n${out.stderr}`).toBe(0);
      expect(out.stdout).toMatch(/Tests\s+(\d+) passed \(\1\)/); // all ran, none skipped
    });
  },
);
