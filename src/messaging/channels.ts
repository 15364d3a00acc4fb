/** The logical channels canaries and coalminers talk on. Transports map them to their own naming. */
export const DEFAULT_PREFIX = 'coalmine';

/** Where a canary listens for register, unregister, clock sync and echo messages. */
export function canaryChannel(prefix: string, canary: string): string {
  return `${prefix}.canary.${canary}`;
}

/** Where a coalminer receives its pings, confirms and clock sync replies. */
export function coalminerChannel(prefix: string, coalminer: string): string {
  return `${prefix}.coalminer.${coalminer}`;
}
