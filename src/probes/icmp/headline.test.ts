import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nsToSeconds, systemClock } from '../../core/clock.js';
import { runProbe } from '../run.js';
import { icmpHeadline } from './headline.js';
import icmp from './index.js';
import { loadIcmpAddon } from './native.js';

/** Whether this process may open an ICMP socket: root, or a group in ping_group_range; says why not. */
function canPing(): boolean {
  const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8')
    .trim()
    .split(/\s+/)
    .map(Number);
  const gids = [process.getgid?.() ?? -1, ...(process.getgroups?.() ?? [])];
  const allowed = process.getuid?.() === 0 || gids.some((g) => g >= lo! && g <= hi!);
  const why = !loadIcmpAddon().ok
    ? 'the ICMP addon is not built (npm install)'
    : !allowed
      ? 'run as root, or allow your group in net.ipv4.ping_group_range'
      : undefined;
  if (why === undefined) return true;
  if (process.env.CI) throw new Error(`CI: ${why}`);
  console.warn(`skipping: ${why}`);
  return false;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe.runIf(canPing())('an ICMP round headlines its round trip, not the round', () => {
  it('reports the mean RTT of its packets as network time, far below the round duration', async () => {
    const opts = icmp.options.parse({ packets: 5, packetIntervalMs: 20 }) as Record<string, unknown>;
    const result = await runProbe('icmp', '127.0.0.1', opts, { clock: systemClock, timeoutMs: 3000 });
    expect(result.ok, JSON.stringify(result.ok ? '' : result.error)).toBe(true);
    const r = {
      ...result,
      durationSeconds: nsToSeconds(result.durationNs),
      networkSeconds: result.networkNs === undefined ? undefined : nsToSeconds(result.networkNs),
    };
    const rtts = (r.detail!.rttsMs as number[]).map((x) => x / 1000);
    expect(rtts).toHaveLength(5);

    // The round lasts at least its four 20 ms gaps: that is the wall time, reported apart.
    expect(r.durationSeconds).toBeGreaterThanOrEqual(0.08);
    // The headline is the packets' mean RTT, exactly, and it is not the round.
    expect(r.networkSeconds).toBeCloseTo(mean(rtts), 9);
    expect(r.networkSeconds! * 10).toBeLessThan(r.durationSeconds);
    const v = r.values!;
    expect(v.icmp_rtt_min_seconds).toBeCloseTo(Math.min(...rtts), 9);
    expect(v.icmp_rtt_max_seconds).toBeCloseTo(Math.max(...rtts), 9);
    expect(v.icmp_rtt_mean_seconds).toBeCloseTo(mean(rtts), 9);
    const sd = Math.sqrt(mean(rtts.map((x) => (x - mean(rtts)) ** 2)));
    expect(v.icmp_rtt_stddev_seconds).toBeCloseTo(sd, 9);
    const jitter = mean(rtts.slice(1).map((x, i) => Math.abs(x - rtts[i]!)));
    expect(v.icmp_rtt_jitter_seconds).toBeCloseTo(jitter, 9);

    const line = icmpHeadline(v)!;
    const fmt = (s: number) => (s * 1000).toFixed(3);
    expect(line).toContain('5/5 replies, 0% loss');
    expect(line).toContain(
      `rtt min/avg/max/stddev ${[Math.min(...rtts), mean(rtts), Math.max(...rtts), sd].map(fmt).join('/')} ms`,
    );
    expect(line).toContain(`jitter ${fmt(jitter)} ms`);
    expect(line).not.toContain(fmt(r.durationSeconds));
    console.info(`icmp 127.0.0.1: ${line}; round ${fmt(r.durationSeconds)} ms`);
  });
});
