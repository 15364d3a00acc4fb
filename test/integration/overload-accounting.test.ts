import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Canary } from '../../src/messaging/canary.js';
import { Coalminer } from '../../src/messaging/coalminer.js';
import { createTransport } from '../../src/transports/registry.js';
import type { Transport } from '../../src/transports/transport.js';
import { serviceReachable } from '../support/services.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

const MQTT = { host: '127.0.0.1', port: 1883 };
const mqttUp = await serviceReachable(MQTT.host, MQTT.port, 'start Mosquitto on port 1883');

/**
 * Exact accounting through a real broker whose publishes time out: the canary's connection goes through a
 * proxy that stalls everything it sends for 12 s, longer than the 5 s publish timeout. The pings then in
 * flight reach Mosquitto when the stall ends (in doubt: failed at the canary, yet delivered), those waiting
 * for the broker's Receive Maximum are never sent, and so is the canary's last word at first: it waits
 * behind them and times out too. Only the last word tells the coalminer how far the canary got.
 */
describe.skipIf(!mqttUp)('exact accounting when MQTT publishes time out', () => {
  const opened: Transport[] = [];
  afterAll(async () => {
    await Promise.all(opened.map((t) => t.close()));
  });

  it('accounts for every attempted ping, the in-doubt ones received once', async () => {
    const proxy = await startTcpProxy(MQTT);
    const open = async (url: string) => {
      const t = await createTransport(url, {});
      opened.push(t);
      await t.connect(AbortSignal.timeout(10_000));
      return t;
    };
    const prefix = `overload${process.pid}`;
    // keepalive past the stall, so the client does not give the connection up during it.
    const pub = await open(`mqtt://127.0.0.1:${proxy.port}?keepalive=60`);
    const sub = await open(`mqtt://${MQTT.host}:${MQTT.port}`);
    const canary = new Canary({ name: 'oc', transport: pub, prefix, ratePerSecond: 500 });
    const miner = new Coalminer({
      name: 'om',
      transport: sub,
      prefix,
      register: ['oc'],
      sequence: { lossTimeoutMs: 1000 },
    });
    try {
      await canary.start();
      await miner.start();
      for (let i = 0; i < 500 && !miner.isConfirmedBy('oc'); i++) await sleep(20);
      expect(miner.isConfirmedBy('oc')).toBe(true);
      await sleep(1000);
      proxy.delayMs.toServer = 12_000;
      await sleep(300);
      // Chunks keep their order: what is sent from now on waits behind the stalled ones.
      proxy.delayMs.toServer = 0;
      await canary.stop();
      const stats = () => canary.stats().get('om')!;
      const counts = () => miner.flowCounts()[0]!.counts;
      const deadline = Date.now() + 20_000;
      for (;;) {
        miner.tick();
        const [s, c] = [stats(), counts()];
        const done =
          s.pending === 0 &&
          c.expected === s.attempted &&
          c.inFlight === 0 &&
          c.sendFailed + c.sendFailedArrived >= s.failed;
        if (done || Date.now() > deadline) break;
        await sleep(50);
      }
      miner.tick();
      const [s, c] = [stats(), counts()];
      const detail = JSON.stringify({ canary: s, coalminer: c, controlErrors: canary.controlErrors });
      // The stall did what the test needs: publishes timed out, the last word among them.
      expect(s.errors.timeout ?? 0, detail).toBeGreaterThan(0);
      expect(canary.controlErrors.timeout ?? 0, detail).toBeGreaterThan(0);
      // Every attempted ping is in exactly one of the coalminer's states, and none is lost: each either
      // arrived (once) or is known to have failed to send.
      expect(c.expected, detail).toBe(s.attempted);
      expect(c.inFlight, detail).toBe(0);
      expect(c.lost, detail).toBe(0);
      expect(c.duplicated, detail).toBe(0);
      expect(c.received + c.sendFailed, detail).toBe(s.attempted);
      // What arrived is what the canary sent plus the in-doubt ones that arrived.
      expect(c.received, detail).toBe(s.sent + c.sendFailedArrived);
      expect(c.sendFailed + c.sendFailedArrived, detail).toBe(s.failed);
    } finally {
      await miner.stop();
      await canary.stop();
      await proxy.close();
    }
  }, 60_000);
});
