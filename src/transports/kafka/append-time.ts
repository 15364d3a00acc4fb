import { subscribe } from 'node:diagnostics_channel';

/** Record batch attribute bit 3: the batch's timestamps are the broker's LogAppendTime. */
const LOG_APPEND_TIME = 0x08;

interface FetchedBatch {
  attributes: number;
  firstOffset: bigint;
  lastOffsetDelta: number;
  maxTimestamp: bigint;
}
interface FetchResponseShape {
  responses?: { partitions?: { partitionIndex: number; records?: FetchedBatch[] }[] }[];
}

/**
 * The broker's append time of fetched records, per partition of one consumer's single topic.
 *
 * Why this exists: on a LogAppendTime topic the broker writes its clock into the batch's maxTimestamp
 * and flags the batch, but @platformatic/kafka 1 hands out `firstTimestamp + delta` (the producer's
 * CreateTime) regardless. Its fetch responses are published on the `plt:kafka:consumer:fetches`
 * tracing channel before the records are pushed to the stream, so we read the batch headers there.
 */
export class AppendTimes {
  /** partition → batches not yet passed, oldest first. Bounded by what one fetch returns. */
  private readonly batches = new Map<number, { first: bigint; last: bigint; ms: bigint }[]>();

  record(response: FetchResponseShape): void {
    for (const topic of response.responses ?? []) {
      for (const p of topic.partitions ?? []) {
        for (const b of p.records ?? []) {
          if ((b.attributes & LOG_APPEND_TIME) === 0) continue;
          let list = this.batches.get(p.partitionIndex);
          if (!list) this.batches.set(p.partitionIndex, (list = []));
          list.push({
            first: b.firstOffset,
            last: b.firstOffset + BigInt(b.lastOffsetDelta),
            ms: b.maxTimestamp,
          });
          if (list.length > 10_000) list.shift();
        }
      }
    }
  }

  /** Broker append time in ms for a record, or undefined when its batch carries CreateTime. */
  lookup(partition: number, offset: bigint): bigint | undefined {
    const list = this.batches.get(partition);
    if (!list) return undefined;
    while (list.length > 0 && list[0]!.last < offset) list.shift();
    const b = list[0];
    return b && b.first <= offset ? b.ms : undefined;
  }
}

const byClient = new WeakMap<object, AppendTimes>();
let subscribed = false;

/** Starts collecting append times for the fetches of `client` (a Consumer). */
export function trackAppendTimes(client: object): AppendTimes {
  if (!subscribed) {
    subscribed = true;
    subscribe('tracing:plt:kafka:consumer:fetches:asyncStart', (message) => {
      const ctx = message as { client?: object; result?: FetchResponseShape };
      const times = ctx.client && byClient.get(ctx.client);
      if (times && ctx.result) times.record(ctx.result);
    });
  }
  const times = new AppendTimes();
  byClient.set(client, times);
  return times;
}
