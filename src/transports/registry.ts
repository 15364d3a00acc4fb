import type { Logger } from '../core/log.js';
import { redactUrl } from './base.js';
import { insecureWarning } from './tls-options.js';
import type { Transport, TransportOptions } from './transport.js';

export interface TransportModule {
  create(url: string, opts?: TransportOptions): Transport;
}

/**
 * A kind's `url.ts`: checks a URL's options without a client library, with the same code its index.ts
 * parses them with, so `config check` and a command's start report what run time would refuse.
 */
export interface TransportUrlModule {
  /** The problems with the URL's options, each a sentence naming the option and what is allowed; [] when fine. */
  checkUrl(url: string): string[];
  /**
   * Where the kind has a way of its own to turn certificate checks off (beyond insecure=, which
   * tls-options.ts reads for every kind): what the URL turned off, as `option=value: what it means`.
   */
  insecure?(url: string): string | undefined;
}

interface TransportEntry {
  /** URL schemes this kind accepts. */
  schemes: readonly string[];
  summary: string;
  /** Loaded on first use, so a client library is only imported when its transport is used. */
  load(): Promise<TransportModule>;
  /** The kind's URL checker (`<kind>/url.ts`), which imports no client library. */
  url(): Promise<TransportUrlModule>;
}

/** Every transport kind by its kind word. Adding one is one folder and one entry here. */
export const transports = {
  memory: {
    schemes: ['memory'],
    summary: 'in-process bus, for tests and demos',
    load: () => import('./memory/index.js'),
    url: () => import('./memory/url.js'),
  },
  websocket: {
    schemes: ['ws', 'wss'],
    summary: 'WebSocket relay (`coalmine relay`)',
    load: () => import('./websocket/index.js'),
    url: () => import('./websocket/url.js'),
  },
  redis: {
    schemes: ['redis', 'rediss', 'redis+stream', 'rediss+stream'],
    summary: 'Redis pub/sub, or streams with consumer groups',
    load: () => import('./redis/index.js'),
    url: () => import('./redis/url.js'),
  },
  amqp: {
    schemes: ['amqp', 'amqps'],
    summary: 'RabbitMQ (AMQP 0-9-1) with publisher confirms',
    load: () => import('./amqp/index.js'),
    url: () => import('./amqp/url.js'),
  },
  mqtt: {
    schemes: ['mqtt', 'mqtts'],
    summary: 'MQTT 3.1.1/5 with QoS 0, 1 or 2',
    load: () => import('./mqtt/index.js'),
    url: () => import('./mqtt/url.js'),
  },
  nats: {
    schemes: ['nats', 'nats+jetstream'],
    summary: 'NATS core, or JetStream with PubAck',
    load: () => import('./nats/index.js'),
    url: () => import('./nats/url.js'),
  },
  kafka: {
    schemes: ['kafka'],
    summary:
      'Kafka with producer acks, LogAppendTime broker stamps, one consumer group per coalminer and channel',
    load: () => import('./kafka/index.js'),
    url: () => import('./kafka/url.js'),
  },
  postgres: {
    schemes: ['postgres', 'postgresql'],
    summary: 'PostgreSQL LISTEN/NOTIFY',
    load: () => import('./postgres/index.js'),
    url: () => import('./postgres/url.js'),
  },
  webhook: {
    schemes: ['http', 'https'],
    summary: 'HTTP webhooks: the canary POSTs to the coalminer',
    load: () => import('./webhook/index.js'),
    url: () => import('./webhook/url.js'),
  },
} satisfies Record<string, TransportEntry>;

export type TransportKind = keyof typeof transports;

export function transportKindOf(url: string): TransportKind | undefined {
  const m = /^([a-z][a-z0-9+.-]*):/i.exec(url);
  const scheme = m?.[1]?.toLowerCase();
  if (!scheme) return undefined;
  for (const [kind, entry] of Object.entries(transports)) {
    if ((entry.schemes as readonly string[]).includes(scheme)) return kind as TransportKind;
  }
  return undefined;
}

export function allSchemes(): string[] {
  return Object.values(transports).flatMap((t) => [...t.schemes]);
}

function unsupported(url: string): string {
  return `unsupported transport URL ${JSON.stringify(redactUrl(url))}: the scheme must be one of ${allSchemes()
    .map((s) => `${s}://`)
    .join(', ')}`;
}

/** Every problem with a transport URL: its scheme, then its kind's options; [] when it is fine. */
export async function checkTransportUrl(url: string): Promise<string[]> {
  const kind = transportKindOf(url);
  if (!kind) return [unsupported(url)];
  const mod = await transports[kind].url();
  return mod.checkUrl(url);
}

/**
 * A synchronous checkTransportUrl, for code that checks many URLs where it cannot wait (the config
 * loader): every kind's url.ts is loaded first, which is cheap as none imports a client library.
 */
export async function loadTransportUrlChecker(): Promise<(url: string) => string[]> {
  const kinds = Object.keys(transports) as TransportKind[];
  const modules = await Promise.all(kinds.map((k) => transports[k].url()));
  const byKind = new Map(kinds.map((k, i) => [k, modules[i]!]));
  return (url) => {
    const kind = transportKindOf(url);
    return kind ? byKind.get(kind)!.checkUrl(url) : [unsupported(url)];
  };
}

/**
 * Creates the transport a URL names; throws a message listing the schemes when none matches. A URL that
 * turns certificate checks off (insecure=1) is said on `log`, once per transport, as it is created.
 */
export async function createTransport(
  url: string,
  opts?: TransportOptions,
  log?: Logger,
): Promise<Transport> {
  const kind = transportKindOf(url);
  if (!kind) {
    throw new Error(unsupported(url));
  }
  const [mod, urlMod]: [TransportModule, TransportUrlModule] = await Promise.all([
    transports[kind].load(),
    transports[kind].url(),
  ]);
  const transport = mod.create(url, opts);
  const own = urlMod.insecure?.(url);
  const warning = insecureWarning(url, transport.displayUrl) ?? (own && `${transport.displayUrl}: ${own}`);
  if (warning) log?.warn(warning);
  return transport;
}
