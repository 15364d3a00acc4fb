import type { Redis } from 'ioredis';
import type { PublishReceipt } from '../transport.js';

/**
 * PUBLISHes of one channel issued in one turn of the event loop, sent as one command when there are two
 * or more (a ping on its own goes as a plain PUBLISH): a Lua script that publishes each message in order
 * and answers once. A canary's tick issues up to a thousand pings at once,
 * and one ioredis command each (its Command, argument array, promise, pipeline entry and reply) cost more
 * than the rest of a ping together, most of it garbage for the collector. The script's reply confirms
 * every message of the batch; a message the server refused stops the batch there, and the reply says how
 * many went out before it, so each ping is still sent or failed exactly.
 */
const SCRIPT = `
for i = 1, #ARGV do
  local r = redis.pcall('PUBLISH', KEYS[1], ARGV[i])
  if type(r) == 'table' and r.err then return {i - 1, r.err} end
end
return #ARGV`;

/** The command name the script is registered under on a client (ioredis's defineCommand). */
const COMMAND = 'coalminePublishBatch';

/** Messages per script call at most: a larger batch is split (a script blocks the server while it runs). */
export const MAX_BATCH = 1000;

type BatchClient = Redis & {
  [COMMAND](channel: string, ...bodies: Buffer[]): Promise<number | [number, string]>;
};

/** Registers the script on `client` (once per client); EVALSHA, loaded by EVAL on NOSCRIPT. */
export function defineBatchCommand(client: Redis): void {
  if (typeof (client as unknown as Partial<BatchClient>)[COMMAND] === 'function') return;
  client.defineCommand(COMMAND, { numberOfKeys: 1, lua: SCRIPT });
}

/**
 * How a batch ended: the first `sent` messages are published; the rest failed with `error` (a refusal of
 * the server, an Error whose name is 'ReplyError' like ioredis's own), if any are left.
 */
export interface BatchOutcome {
  sent: number;
  error?: Error;
}

/** Runs one batch through the script; rejects as the command does (connection, or the script refused). */
export async function publishBatch(client: Redis, channel: string, bodies: Buffer[]): Promise<BatchOutcome> {
  const reply = await (client as BatchClient)[COMMAND](channel, ...bodies);
  if (typeof reply === 'number') return { sent: reply };
  const error = new Error(String(reply[1]));
  error.name = 'ReplyError';
  return { sent: Number(reply[0]), error };
}

/**
 * Whether a ReplyError of the script call itself means the server will not run scripts for us (no
 * permission, scripting disabled or not supported): nothing of the batch ran, and PUBLISH one by one is
 * the way for this connection.
 */
export function scriptUnavailable(err: Error): boolean {
  return /NOPERM|unknown command|not allowed|disabled|Error compiling script/i.test(err.message);
}

/** Publishes waiting to go out as one batch: the messages and how to settle each. */
export class PendingBatch {
  readonly bodies: Buffer[] = [];
  readonly resolves: ((r: PublishReceipt) => void)[] = [];
  readonly rejects: ((err: Error) => void)[] = [];

  constructor(
    readonly channel: string,
    readonly timeoutMs: number,
  ) {}

  get size(): number {
    return this.bodies.length;
  }

  add(body: Buffer): Promise<PublishReceipt> {
    this.bodies.push(body);
    return new Promise<PublishReceipt>((resolve, reject) => {
      this.resolves.push(resolve);
      this.rejects.push(reject);
    });
  }

  /** Settles messages [from, to): resolved with `receipt`, or rejected with `err`. */
  settle(from: number, to: number, receipt: PublishReceipt | undefined, err?: Error): void {
    for (let i = from; i < to; i++) {
      if (err !== undefined || receipt === undefined) this.rejects[i]!(err ?? new Error('not published'));
      else this.resolves[i]!(receipt);
    }
  }
}
