// @ts-check
/**
 * The peer of bench/messaging.mjs: each messaging system's own client library, used the plainest way that
 * keeps the delivery semantics our transport of that kind has by default (publisher confirms on RabbitMQ,
 * QoS 1 on MQTT, acks=all on Kafka, the relay's ack on WebSocket, a reply per PUBLISH on Redis,
 * fire-and-forget on NATS core), with no envelope, no sequence tracking and no histograms.
 * Like our pair, one connection publishes and another subscribes.
 */

/**
 * @typedef {{
 *   textOnly: boolean,
 *   subscribe(channel: string, onMessage: (payload: Uint8Array) => void): Promise<void>,
 *   publish(channel: string, payload: Uint8Array | string): Promise<unknown> | void,
 *   close(): Promise<void>,
 * }} RawClient
 */

import { setMaxListeners } from 'node:events';

const noop = () => {};

/**
 * Connects a raw client for the kind of `url` (redis, nats, amqp, mqtt, postgres, ws, kafka, memory).
 * @param {string} url
 * @param {string} tag unique per process, for queue, group and client names
 * @returns {Promise<RawClient>}
 */
export async function rawClient(url, tag) {
  const scheme = url.slice(0, url.indexOf(':'));
  switch (scheme) {
    case 'redis':
      return redis(url);
    case 'nats':
      return nats(url);
    case 'amqp':
      return amqp(url, tag);
    case 'mqtt':
      return mqttRaw(url);
    case 'postgres':
    case 'postgresql':
      return postgres(url);
    case 'ws':
      return websocket(url);
    case 'kafka':
      return kafka(url, tag);
    case 'memory':
      return memory(url);
    default:
      throw new Error(`no raw client for ${scheme}://`);
  }
}

/** @param {string} url */
async function redis(url) {
  const { Redis } = await import('ioredis');
  const pub = new Redis(url, { lazyConnect: true });
  const sub = new Redis(url, { lazyConnect: true });
  pub.on('error', noop);
  sub.on('error', noop);
  await pub.connect();
  await sub.connect();
  /** @type {Map<string, (p: Uint8Array) => void>} */
  const handlers = new Map();
  sub.on('messageBuffer', (/** @type {Buffer} */ ch, /** @type {Buffer} */ msg) =>
    handlers.get(ch.toString())?.(msg),
  );
  return {
    textOnly: false,
    async subscribe(channel, onMessage) {
      handlers.set(channel, onMessage);
      await sub.subscribe(channel);
    },
    publish: (channel, payload) => pub.publish(channel, Buffer.from(/** @type {Uint8Array} */ (payload))),
    async close() {
      pub.disconnect();
      sub.disconnect();
    },
  };
}

/** @param {string} url */
async function nats(url) {
  const { connect } = await import('nats');
  const u = new URL(url);
  const servers = `${u.hostname}:${u.port || 4222}`;
  const pub = await connect({ servers });
  const sub = await connect({ servers });
  return {
    textOnly: false,
    async subscribe(channel, onMessage) {
      sub.subscribe(channel, { callback: (err, m) => err || onMessage(m.data) });
      await sub.flush();
    },
    publish: (channel, payload) => pub.publish(channel, /** @type {Uint8Array} */ (payload)),
    async close() {
      await Promise.allSettled([pub.close(), sub.close()]);
    },
  };
}

/** @param {string} url @param {string} tag */
async function amqp(url, tag) {
  const amqplib = (await import('amqplib')).default;
  const exchange = `coalmine.bench-raw`;
  const pubConn = await amqplib.connect(url);
  const subConn = await amqplib.connect(url);
  pubConn.on('error', noop);
  subConn.on('error', noop);
  const pub = await pubConn.createConfirmChannel();
  await pub.assertExchange(exchange, 'topic', { durable: false });
  return {
    textOnly: false,
    async subscribe(channel, onMessage) {
      const ch = await subConn.createChannel();
      await ch.assertExchange(exchange, 'topic', { durable: false });
      await ch.prefetch(1000);
      const q = await ch.assertQueue(`${tag}.${channel}`, { exclusive: true, autoDelete: true });
      await ch.bindQueue(q.queue, exchange, channel);
      await ch.consume(
        q.queue,
        (msg) => {
          if (!msg) return;
          onMessage(msg.content);
          ch.ack(msg);
        },
        { noAck: false },
      );
    },
    publish: (channel, payload) =>
      new Promise((resolve, reject) => {
        pub.publish(exchange, channel, Buffer.from(/** @type {Uint8Array} */ (payload)), {}, (err) =>
          err ? reject(err) : resolve(undefined),
        );
      }),
    async close() {
      await Promise.allSettled([pubConn.close(), subConn.close()]);
    },
  };
}

/** @param {string} url */
async function mqttRaw(url) {
  const mqtt = (await import('mqtt')).default;
  const options = { protocolVersion: /** @type {5} */ (5), reconnectPeriod: 0, clean: true };
  const pub = await mqtt.connectAsync(url, options);
  const sub = await mqtt.connectAsync(url, options);
  pub.on('error', noop);
  sub.on('error', noop);
  /** @type {Map<string, (p: Uint8Array) => void>} */
  const handlers = new Map();
  sub.on('message', (topic, payload) => handlers.get(topic)?.(payload));
  const topicOf = (/** @type {string} */ c) => c.replaceAll('.', '/');
  return {
    textOnly: false,
    async subscribe(channel, onMessage) {
      handlers.set(topicOf(channel), onMessage);
      await sub.subscribeAsync(topicOf(channel), { qos: 1 });
    },
    publish: (channel, payload) =>
      new Promise((resolve, reject) => {
        pub.publish(topicOf(channel), Buffer.from(/** @type {Uint8Array} */ (payload)), { qos: 1 }, (err) =>
          err ? reject(err) : resolve(undefined),
        );
      }),
    async close() {
      await Promise.allSettled([pub.endAsync(true), sub.endAsync(true)]);
    },
  };
}

/** @param {string} url */
async function postgres(url) {
  const pg = (await import('pg')).default;
  const pub = new pg.Client({ connectionString: url });
  const sub = new pg.Client({ connectionString: url });
  pub.on('error', noop);
  sub.on('error', noop);
  await pub.connect();
  await sub.connect();
  /** @type {Map<string, (p: Uint8Array) => void>} */
  const handlers = new Map();
  const enc = new TextEncoder();
  sub.on('notification', (n) => handlers.get(n.channel)?.(enc.encode(n.payload ?? '')));
  return {
    textOnly: true,
    async subscribe(channel, onMessage) {
      handlers.set(channel, onMessage);
      await sub.query(`LISTEN "${channel}"`);
    },
    publish: (channel, payload) => pub.query('SELECT pg_notify($1, $2)', [channel, payload]),
    async close() {
      await Promise.allSettled([pub.end(), sub.end()]);
    },
  };
}

/** @param {string} url */
async function websocket(url) {
  const { WebSocket } = await import('ws');
  /** @returns {Promise<import('ws').WebSocket>} */
  const open = () =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.on('error', reject);
      // The relay greets first; only then is it ready for frames.
      ws.once('message', () => {
        ws.off('error', reject);
        ws.on('error', noop);
        resolve(ws);
      });
    });
  const pub = await open();
  const sub = await open();
  /** @type {Map<string, (v: unknown) => void>} */
  const pending = new Map();
  let nextId = 0n;
  pub.on('message', (data, isBinary) => {
    if (isBinary) return;
    const m = JSON.parse(String(data));
    if (m.op === 'ack') {
      pending.get(m.id)?.(undefined);
      pending.delete(m.id);
    }
  });
  /** @type {Map<string, (p: Uint8Array) => void>} */
  const handlers = new Map();
  /** @type {Map<string, () => void>} */
  const subscribed = new Map();
  sub.on('message', (/** @type {Buffer} */ data, isBinary) => {
    if (!isBinary) {
      const m = JSON.parse(String(data));
      if (m.op === 'subscribed') subscribed.get(m.channel)?.();
      return;
    }
    const len = /** @type {number} */ (data[0]);
    handlers.get(data.toString('latin1', 1, 1 + len))?.(data.subarray(1 + len + 8));
  });
  return {
    textOnly: false,
    async subscribe(channel, onMessage) {
      handlers.set(channel, onMessage);
      const ok = new Promise((r) => subscribed.set(channel, () => r(undefined)));
      sub.send(JSON.stringify({ op: 'sub', channel }));
      await ok;
    },
    publish: (channel, payload) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        const frame = Buffer.allocUnsafe(1 + channel.length + 8 + payload.length);
        frame[0] = channel.length;
        frame.write(channel, 1, 'latin1');
        frame.writeBigUInt64BE(id, 1 + channel.length);
        frame.set(/** @type {Uint8Array} */ (payload), 1 + channel.length + 8);
        pending.set(String(id), resolve);
        pub.send(frame, { binary: true }, (err) => err && reject(err));
      }),
    async close() {
      pub.terminate();
      sub.terminate();
    },
  };
}

/** @param {string} url @param {string} tag */
async function kafka(url, tag) {
  const { Producer, Consumer, Admin } = await import('@platformatic/kafka');
  const u = new URL(url);
  const bootstrapBrokers = [`${u.hostname}:${u.port || 9092}`];
  const base = {
    clientId: `coalmine-bench-raw-${tag}`,
    bootstrapBrokers,
    connectTimeout: 5000,
    timeout: 5000,
  };
  const producer = new Producer({ ...base, acks: -1, autocreateTopics: false });
  const admin = new Admin(base);
  /** @type {{ consumer: any, stream: any }[]} */
  const consumers = [];
  for (const c of /** @type {any[]} */ ([producer, admin])) c.on('error', noop);
  return {
    textOnly: false,
    async subscribe(channel, onMessage) {
      await admin
        .createTopics({ topics: [channel], partitions: -1, replicas: -1 })
        .catch((/** @type {any} */ err) => {
          if (!String(err?.message ?? err).includes('exist') && !JSON.stringify(err).includes('EXISTS'))
            throw err;
        });
      const consumer = new Consumer({
        ...base,
        groupId: `coalmine-bench-raw-${tag}-${channel}`,
        maxWaitTime: 500,
        highWaterMark: 1024,
        autocommit: false,
      });
      /** @type {any} */ (consumer).on('error', noop);
      const stream = await consumer.consume({ topics: [channel], mode: 'earliest', autocommit: false });
      stream.on('data', (/** @type {{ value: Buffer }} */ m) => onMessage(m.value));
      stream.on('error', noop);
      consumers.push({ consumer, stream });
    },
    publish: (channel, payload) =>
      producer.send({
        messages: [{ topic: channel, value: Buffer.from(/** @type {Uint8Array} */ (payload)) }],
      }),
    async close() {
      for (const { consumer, stream } of consumers) {
        await stream.close().catch(noop);
        await consumer.close(true).catch(noop);
      }
      await Promise.allSettled([producer.close(), admin.close()]);
    },
  };
}

/** Our in-process memory bus through its Transport API: the memory transport has no other client. */
async function memory(/** @type {string} */ url) {
  const { create } = await import(new URL('../../dist/transports/memory/index.js', import.meta.url).href);
  const pub = create(url);
  const sub = create(url);
  await pub.connect();
  await sub.connect();
  const ac = new AbortController();
  // One signal ends all the subscriptions (one abort listener each).
  setMaxListeners(0, ac.signal);
  return {
    textOnly: false,
    async subscribe(/** @type {string} */ channel, /** @type {(p: Uint8Array) => void} */ onMessage) {
      const it = sub.subscribe(channel, ac.signal);
      void (async () => {
        for await (const d of it) onMessage(d.payload);
      })();
    },
    publish: (/** @type {string} */ channel, /** @type {Uint8Array} */ payload) =>
      pub.publish(channel, payload),
    async close() {
      ac.abort();
      await Promise.allSettled([pub.close(), sub.close()]);
    },
  };
}
