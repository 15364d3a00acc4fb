import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../core/clock.js';
import icmp from './index.js';

// Runs only inside the private network namespace that icmp.test.ts creates with `unshare -n`
// (loopback only, ping_group_range open to everyone), where changing sysctls touches nothing else.
const inNamespace = process.env.COALMINE_ICMP_NETNS === '1';

const IGNORE = { 4: '/proc/sys/net/ipv4/icmp_echo_ignore_all', 6: '/proc/sys/net/ipv6/icmp/echo_ignore_all' };
const ignoreEchoes = (family: 4 | 6, on: boolean) => writeFileSync(IGNORE[family], on ? '1' : '0');

function ping(target: string, opts: Record<string, unknown>, timeoutMs = 5000) {
  return icmp.run(target, icmp.options.parse(opts), {
    clock: systemClock,
    timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
  });
}

describe.runIf(inNamespace)('icmp inside a private network namespace', () => {
  afterEach(() => {
    ignoreEchoes(4, false);
    ignoreEchoes(6, false);
  });

  for (const [target, family] of [
    ['127.0.0.1', 4],
    ['::1', 6],
  ] as const) {
    it(`pings ${target} with an unprivileged datagram socket`, async () => {
      const r = await ping(target, { socketMode: 'dgram', packetIntervalMs: 10 });
      expect(r.ok).toBe(true);
      expect(r.detail?.socketMode).toBe('dgram');
      expect(r.values).toMatchObject({
        ip_protocol: family,
        icmp_packets_sent: 5,
        icmp_packets_received: 5,
        icmp_packet_loss_ratio: 0,
      });
      expect(r.values!.icmp_rtt_max_seconds).toBeLessThan(0.005);
      expect(r.values!.icmp_reply_hop_limit).toBeGreaterThan(0);
    });

    for (const socketMode of ['dgram', 'raw'] as const) {
      it(`reports total loss to ${target} (${socketMode}) after the reply timeout, not the run timeout`, async () => {
        ignoreEchoes(family, true);
        const t0 = performance.now();
        const r = await ping(target, { socketMode, packets: 3, packetIntervalMs: 20, replyTimeoutMs: 100 });
        expect(performance.now() - t0).toBeLessThan(1000);
        expect(r.ok).toBe(false);
        if (r.ok) return;
        expect(r.error.code).toBe('timeout');
        expect(r.error.message).toContain(`no echo reply from ${target}: 3 of 3 sent, 0 received, 3 lost`);
        expect(r.values).toMatchObject({
          icmp_packets_sent: 3,
          icmp_packets_received: 0,
          icmp_packet_loss_ratio: 1,
        });
        expect(r.values?.icmp_rtt_median_seconds).toBeUndefined();
        expect(r.phases.rtt).toBeUndefined();
      });
    }

    it(`counts partial loss to ${target} and still succeeds`, async () => {
      // Requests go out at 0, 100, 200 and 300 ms; replies stop at 150 ms.
      const stop = setTimeout(() => ignoreEchoes(family, true), 150);
      const r = await ping(target, { packets: 4, packetIntervalMs: 100, replyTimeoutMs: 100 });
      clearTimeout(stop);
      expect(r.ok).toBe(true);
      expect(r.values).toMatchObject({
        icmp_packets_sent: 4,
        icmp_packets_received: 2,
        icmp_packet_loss_ratio: 0.5,
      });
      const rtts = r.detail?.rttsMs as (number | null)[];
      expect(rtts.map((x) => x === null)).toEqual([false, false, true, true]);
      expect(r.detail).toMatchObject({ lost: 2, inFlight: 0 });
    });
  }

  it('waits for lost replies until just before the run timeout when no reply timeout is set', async () => {
    ignoreEchoes(4, true);
    const t0 = performance.now();
    const r = await ping('127.0.0.1', { packets: 2, packetIntervalMs: 10 }, 400);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThan(300);
    expect(took).toBeLessThan(400);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toContain('2 lost');
  });
});
