import type { Redis } from 'ioredis';
import { LinkDownError } from '../links.js';
import { RedisLink } from './link.js';

/** One stream entry as delivered: its id and its payload field (absent when trimmed away while pending). */
export interface StreamEntry {
  id: string;
  payload: Buffer | undefined;
}

/** The field of each stream entry that holds the payload. */
export const PAYLOAD_FIELD = 'p';

/** Entries per XREADGROUP call. */
const BATCH = 500;
/** How long one XREADGROUP blocks; the loop simply blocks again, this only bounds a single call. */
const BLOCK_MS = 5000;

/** Compares stream ids `ms-seq` numerically. */
export function compareStreamIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map((x) => BigInt(x));
  const [bm = 0n, bs = 0n] = b.split('-').map((x) => BigInt(x));
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

/** The ms part of a stream id (Redis's clock when it appended the entry), as ns. */
export function streamIdNs(id: string): bigint | undefined {
  const ms = /^(\d+)-\d+$/.exec(id)?.[1];
  return ms === undefined ? undefined : BigInt(ms) * 1_000_000n;
}

/** Parses an XREADGROUP reply for one stream into entries. */
export function parseReadReply(reply: unknown): StreamEntry[] {
  if (!Array.isArray(reply)) return [];
  const out: StreamEntry[] = [];
  for (const stream of reply as unknown[]) {
    const entries = Array.isArray(stream) ? (stream[1] as unknown) : undefined;
    if (!Array.isArray(entries)) continue;
    for (const entry of entries as unknown[]) {
      if (!Array.isArray(entry)) continue;
      const [rawId, fields] = entry as [unknown, unknown];
      const id = Buffer.isBuffer(rawId) ? rawId.toString() : String(rawId);
      let payload: Buffer | undefined;
      if (Array.isArray(fields)) {
        for (let i = 0; i + 1 < fields.length; i += 2) {
          if (String(fields[i]) === PAYLOAD_FIELD && Buffer.isBuffer(fields[i + 1]))
            payload = fields[i + 1] as Buffer;
        }
      }
      out.push({ id, payload });
    }
  }
  return out;
}

/**
 * Reads one stream through a consumer group on its own connection (a blocked XREADGROUP holds the
 * connection). After every (re)connection it first re-reads its own pending entries, because a reply
 * lost with a dropped connection leaves entries marked as delivered to us that never arrived; entries up
 * to the last one handed out are only acknowledged, later ones are delivered. Then it reads new entries
 * with `>`, which includes everything added while it was away: the reason to use streams at all.
 */
export class StreamReader {
  private lastDelivered: string | undefined;
  private stopped = false;
  private groupCreated = false;
  readonly done: Promise<void>;

  constructor(
    readonly link: RedisLink,
    private readonly key: string,
    private readonly group: string,
    private readonly consumer: string,
    private readonly deliver: (entry: StreamEntry & { payload: Buffer }) => void,
  ) {
    this.done = this.loop();
  }

  /**
   * Creates the consumer group where missing: at `$` the first time (only what is published from now on),
   * later (the server lost it, e.g. restarted without persistence) just after the last entry handed out.
   */
  async ensureGroup(client: Redis): Promise<void> {
    const start = this.groupCreated ? (this.lastDelivered ?? '0') : '$';
    try {
      await client.xgroup('CREATE', this.key, this.group, start, 'MKSTREAM');
    } catch (err) {
      if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) throw err;
    }
    this.groupCreated = true;
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.link.close();
    return this.done;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      if (!(await this.link.waitUp())) return;
      try {
        await this.readUntilDropped();
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof Error && err.message.startsWith('NOGROUP')) {
          await this.link.run((c) => this.ensureGroup(c)).catch(() => undefined);
          continue;
        }
        if (err instanceof LinkDownError) continue;
        // Anything else (WRONGTYPE, ...): reconnect with backoff, which reports the error in the status
        // and runs XGROUP CREATE again, instead of spinning on a failing read.
        this.link.drop(err);
      }
    }
  }

  private async readUntilDropped(): Promise<void> {
    let cursor = '0';
    while (!this.stopped) {
      const reply = await this.link.run((c) =>
        c.callBuffer('XREADGROUP', [
          'GROUP',
          this.group,
          this.consumer,
          'COUNT',
          BATCH,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          this.key,
          cursor,
        ]),
      );
      const entries = parseReadReply(reply);
      if (cursor !== '>' && entries.length === 0) {
        cursor = '>';
        continue;
      }
      for (const e of entries) {
        if (this.lastDelivered !== undefined && compareStreamIds(e.id, this.lastDelivered) <= 0) continue;
        this.lastDelivered = e.id;
        // An entry trimmed by MAXLEN while pending has no data left: it is lost, and the canary counts it.
        if (e.payload) this.deliver({ id: e.id, payload: e.payload });
      }
      if (cursor !== '>') cursor = entries[entries.length - 1]!.id;
      if (entries.length > 0) {
        // Pipelined ahead of the next read on this connection; if it is lost, the next connection's
        // pending pass acknowledges these again without delivering them twice.
        this.link.client.xack(this.key, this.group, ...entries.map((e) => e.id)).catch(() => undefined);
      }
    }
  }
}
