import { TransportError } from '../transport.js';

export type KafkaAcks = -1 | 0 | 1;

export interface KafkaUrl {
  brokers: string[];
  acks: KafkaAcks;
  /** Explicit consumer group (base) name, when `?group=` is given. */
  group: string | undefined;
  fromBeginning: boolean;
}

/**
 * Parses `kafka://host:port[,host:port...]?acks=all|1|0&group=NAME&fromBeginning=false`.
 * Parsed by hand because a comma-separated host list is not a host the URL parser accepts everywhere.
 */
export function parseKafkaUrl(url: string): KafkaUrl {
  const m = /^kafka:\/\/([^/?#]+)\/?(?:\?([^#]*))?$/i.exec(url);
  if (!m)
    throw new TransportError(
      'error',
      `not a Kafka URL: ${url} (expected kafka://host:port[,host:port...][?options])`,
    );
  const brokers = m[1]!.split(',').map((b) => {
    const hp = b.trim();
    if (!hp) throw new TransportError('error', `empty broker address in ${url}`);
    return /:\d+$/.test(hp) || hp.startsWith('[') ? hp : `${hp}:9092`;
  });
  const q = new URLSearchParams(m[2] ?? '');
  for (const key of q.keys()) {
    if (!['acks', 'group', 'fromBeginning'].includes(key)) {
      throw new TransportError(
        'error',
        `unknown Kafka URL option "${key}" (known: acks, group, fromBeginning)`,
      );
    }
  }
  const acksText = (q.get('acks') ?? 'all').toLowerCase();
  const acks = ({ all: -1, '-1': -1, '1': 1, '0': 0 } as Record<string, KafkaAcks>)[acksText];
  if (acks === undefined) throw new TransportError('error', `acks must be all, 1 or 0, not "${acksText}"`);
  const fb = (q.get('fromBeginning') ?? 'false').toLowerCase();
  if (fb !== 'true' && fb !== 'false')
    throw new TransportError('error', `fromBeginning must be true or false, not "${fb}"`);
  const group = q.get('group') ?? undefined;
  if (group === '') throw new TransportError('error', 'group must not be empty');
  return { brokers, acks, group, fromBeginning: fb === 'true' };
}

/** Kafka topic names allow [a-zA-Z0-9._-] up to 249 chars; anything else becomes `_`. */
export function topicFor(channel: string): string {
  const t = channel.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 249);
  return t === '' || t === '.' || t === '..' ? `_${t}` : t;
}
