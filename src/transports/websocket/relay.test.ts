import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, type ClientOptions, type RawData } from 'ws';
import { startRelay, type Relay, type RelayOptions } from './relay.js';

/** A raw protocol client: what a third-party client of the relay would see. */
class RawClient {
  readonly texts: Record<string, string>[] = [];
  readonly binaries: Buffer[] = [];
  closed: { code: number } | undefined;
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on('error', () => {});
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buf = data as Buffer;
      if (isBinary) this.binaries.push(buf);
      else this.texts.push(JSON.parse(buf.toString('utf8')) as Record<string, string>);
      this.wake();
    });
    ws.on('close', (code) => {
      this.closed = { code };
      this.wake();
    });
  }

  static async open(url: string, options?: ClientOptions): Promise<RawClient> {
    const c = new RawClient(new WebSocket(url, options));
    await c.until(() => c.texts.some((t) => t.op === 'hello'), 'hello');
    return c;
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  async until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  text(op: string): Record<string, string>[] {
    return this.texts.filter((t) => t.op === op);
  }

  async sub(channel: string): Promise<void> {
    const before = this.text('subscribed').length;
    this.ws.send(JSON.stringify({ op: 'sub', channel }));
    await this.until(() => this.text('subscribed').length > before, `subscribed ${channel}`);
  }

  publish(channel: string, id: bigint, payload: Uint8Array): void {
    this.ws.send(publishFrame(channel, id, payload));
  }

  async publishAcked(channel: string, id: bigint, payload: Uint8Array): Promise<Record<string, string>> {
    this.publish(channel, id, payload);
    await this.until(() => this.texts.some((t) => t.id === id.toString()), `ack ${id}`);
    return this.texts.find((t) => t.id === id.toString())!;
  }

  deliveries(channel: string) {
    return this.binaries
      .map((b) => ({
        channel: b.toString('latin1', 1, 1 + b[0]!),
        ns: b.readBigUInt64BE(1 + b[0]!),
        payload: b.subarray(9 + b[0]!),
      }))
      .filter((d) => d.channel === channel);
  }

  close() {
    this.ws.terminate();
  }
}

function publishFrame(channel: string, id: bigint, payload: Uint8Array): Buffer {
  const head = Buffer.alloc(1 + channel.length + 8);
  head[0] = channel.length;
  head.write(channel, 1, 'latin1');
  head.writeBigUInt64BE(id, 1 + channel.length);
  return Buffer.concat([head, payload]);
}

const nowNs = () => BigInt(Date.now()) * 1_000_000n;
const text = (s: string) => new TextEncoder().encode(s);

describe('relay', () => {
  let relay: Relay | undefined;
  const clients: RawClient[] = [];
  const start = async (o: Partial<RelayOptions> = {}) =>
    (relay = await startRelay({ host: '127.0.0.1', port: 0, ...o }));
  const client = async (options?: ClientOptions) => {
    const c = await RawClient.open(relay!.url, options);
    clients.push(c);
    return c;
  };

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await relay?.close();
    relay = undefined;
  });

  it('greets each client with its hop id and limits', async () => {
    await start({ hopId: 'relay-eu-1', maxPayload: 4096, heartbeatMs: 1000 });
    const c = await client();
    expect(c.text('hello')[0]).toMatchObject({
      op: 'hello',
      version: 1,
      hop: 'relay-eu-1',
      maxPayload: 4096,
      heartbeatMs: 1000,
    });
  });

  it('fans each publish out to every subscriber, stamped with its receive time, then acks the publisher', async () => {
    await start();
    const subs = await Promise.all(Array.from({ length: 25 }, () => client()));
    await Promise.all(subs.map((s) => s.sub('coalmine.fanout')));
    const pub = await client();
    const before = nowNs();
    const ack = await pub.publishAcked('coalmine.fanout', 7n, text('cm1 hello'));
    const after = nowNs();
    expect(ack).toMatchObject({ op: 'ack', id: '7' });
    expect(BigInt(ack.ns!)).toBeGreaterThanOrEqual(before - 1_000_000n);
    for (const s of subs) {
      await s.until(() => s.deliveries('coalmine.fanout').length === 1, 'delivery');
      const [d] = s.deliveries('coalmine.fanout');
      expect(Buffer.from(d!.payload).toString()).toBe('cm1 hello');
      // The stamp is the relay's receive time, no later than its ack.
      expect(d!.ns).toBeGreaterThanOrEqual(before - 1_000_000n);
      expect(d!.ns).toBeLessThanOrEqual(BigInt(ack.ns!));
      expect(d!.ns).toBeLessThanOrEqual(after + 1_000_000n);
    }
    expect(relay!.stats()).toMatchObject({
      clients: 26,
      channels: 1,
      subscriptions: 25,
      published: 1,
      delivered: 25,
    });
  });

  it('keeps channels apart and stops delivering after unsub', async () => {
    await start();
    const a = await client();
    const b = await client();
    await a.sub('coalmine.a');
    await b.sub('coalmine.b');
    const pub = await client();
    await pub.publishAcked('coalmine.b', 1n, text('for b'));
    await pub.publishAcked('coalmine.a', 2n, text('for a'));
    await a.until(() => a.binaries.length === 1, 'a delivery');
    await b.until(() => b.binaries.length === 1, 'b delivery');
    expect(a.deliveries('coalmine.a').map((d) => Buffer.from(d.payload).toString())).toEqual(['for a']);
    expect(b.deliveries('coalmine.b').map((d) => Buffer.from(d.payload).toString())).toEqual(['for b']);

    a.ws.send(JSON.stringify({ op: 'unsub', channel: 'coalmine.a' }));
    await a.until(() => a.text('unsubscribed').length === 1, 'unsubscribed');
    await pub.publishAcked('coalmine.a', 3n, text('after unsub'));
    // The ack follows the fan-out, and b's socket is as fast as a's: a second frame would be here by now.
    await b.publishAcked('coalmine.b', 4n, text('marker'));
    expect(a.binaries).toHaveLength(1);
  });

  it('answers bad frames with an error frame, counts them, and keeps serving', async () => {
    await start();
    const c = await client();
    c.ws.send('not json');
    c.ws.send(JSON.stringify({ op: 'dance' }));
    c.ws.send(JSON.stringify({ op: 'sub', channel: 'has spaces' }));
    c.ws.send(Buffer.from([0]));
    c.ws.send(Buffer.from([5, 0x61]));
    c.ws.send(publishFrame('bad/chan', 9n, text('x')));
    await c.until(() => c.text('error').length === 6, 'six errors');
    expect(c.text('error').map((e) => e.code)).toEqual([
      'bad_frame',
      'bad_frame',
      'bad_channel',
      'bad_frame',
      'bad_frame',
      'bad_channel',
    ]);
    expect(c.text('error')[5]!.id).toBe('9');
    expect(relay!.stats().invalidFrames).toBe(6);

    await c.sub('coalmine.ok');
    await c.publishAcked('coalmine.ok', 10n, text('still works'));
    await c.until(() => c.deliveries('coalmine.ok').length === 1, 'delivery');
  });

  it('refuses an oversized payload with a too_large error frame and does not forward it', async () => {
    await start({ maxPayload: 1024 });
    const sub = await client();
    await sub.sub('coalmine.big');
    const pub = await client();
    pub.publish('coalmine.big', 1n, new Uint8Array(1025));
    await pub.until(() => pub.text('error').length === 1, 'error');
    expect(pub.text('error')[0]).toMatchObject({ code: 'too_large', id: '1' });
    expect(pub.text('ack')).toHaveLength(0);
    await pub.publishAcked('coalmine.big', 2n, new Uint8Array(1024));
    await sub.until(() => sub.binaries.length === 1, 'the 1024-byte delivery');
    expect(sub.deliveries('coalmine.big')[0]!.payload.length).toBe(1024);

    // Far over the limit the relay does not read it at all: the connection closes with 1009.
    pub.publish('coalmine.big', 3n, new Uint8Array(10_000));
    await pub.until(() => pub.closed !== undefined, 'close');
    expect(pub.closed!.code).toBe(1009);
    expect(relay!.stats().oversized).toBe(2);
    expect(sub.closed).toBeUndefined();
  });

  it('disconnects a subscriber that stops reading while the others keep receiving everything', async () => {
    await start({ maxBufferedBytes: 1024 * 1024 });
    const slow = await client();
    const fast = await client();
    await slow.sub('coalmine.flood');
    await fast.sub('coalmine.flood');
    slow.ws.pause(); // stops reading its socket: the kernel buffers fill, then the relay's
    const pub = await client();
    const n = 400;
    const payload = new Uint8Array(64 * 1024);
    // Windows of 16 unacked publishes, as a real publisher waiting for acks would behave.
    for (let i = 0; i < n; i += 16) {
      for (let j = i; j < i + 16; j++) pub.publish('coalmine.flood', BigInt(j + 1), payload);
      await pub.until(() => pub.text('ack').length === i + 16, `acks to ${i + 16}`, 10_000);
    }
    await fast.until(() => fast.binaries.length === n, `${n} deliveries`, 10_000);
    expect(relay!.stats().slowClientsDropped).toBe(1);
    expect(relay!.stats().clients).toBe(2);
    slow.ws.resume();
    await slow.until(() => slow.closed !== undefined, 'slow client closed');
    expect(slow.binaries.length).toBeLessThan(n);
  });

  it('refuses subscriptions past the per-client limit', async () => {
    await start({ maxSubscriptionsPerClient: 2 });
    const c = await client();
    await c.sub('coalmine.one');
    await c.sub('coalmine.two');
    await c.sub('coalmine.one'); // already held: not a new one
    c.ws.send(JSON.stringify({ op: 'sub', channel: 'coalmine.three' }));
    await c.until(() => c.text('error').length === 1, 'error');
    expect(c.text('error')[0]).toMatchObject({ code: 'too_many_subscriptions', channel: 'coalmine.three' });
    expect(relay!.stats().subscriptions).toBe(2);
  });

  it('refuses clients past maxClients with HTTP 503', async () => {
    await start({ maxClients: 1 });
    await client();
    const extra = new WebSocket(relay!.url);
    const err = await new Promise<Error>((r) => extra.on('error', r));
    expect(err.message).toContain('503');
    expect(relay!.stats()).toMatchObject({ clients: 1, refusedClients: 1 });
  });

  it('drops a client that stops answering pings', async () => {
    await start({ heartbeatMs: 100 });
    const dead = await client({ autoPong: false });
    const alive = await client();
    await dead.until(() => dead.closed !== undefined, 'dead client dropped', 2000);
    expect(relay!.stats()).toMatchObject({ clients: 1, deadClientsDropped: 1 });
    expect(alive.closed).toBeUndefined();
  });

  it('close() disconnects every client, frees the port and is idempotent', async () => {
    await start();
    const port = relay!.port;
    const c = await client();
    await Promise.all([relay!.close(), relay!.close()]);
    await c.until(() => c.closed !== undefined, 'client closed');
    const probe = createServer();
    await new Promise<void>((resolve, reject) =>
      probe.once('error', reject).listen(port, '127.0.0.1', resolve),
    );
    await new Promise((r) => probe.close(r));
  });

  it('reports a port in use as an error naming the address', async () => {
    await start();
    await expect(startRelay({ host: '127.0.0.1', port: relay!.port })).rejects.toThrow(
      new RegExp(`127\\.0\\.0\\.1:${relay!.port}: .*EADDRINUSE`),
    );
  });

  it('answers plain HTTP with 426 Upgrade Required', async () => {
    await start();
    const res = await fetch(relay!.url.replace('ws:', 'http:'));
    expect(res.status).toBe(426);
    await res.text();
  });
});
