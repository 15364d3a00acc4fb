/** A deterministic PRNG (mulberry32) for fuzz tests, so a failure replays from its printed seed. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const bytes = (n: number) => Buffer.from(Uint8Array.from({ length: n }, () => int(256)));
  const chance = (p: number) => next() < p;
  return { next, int, pick, bytes, chance };
}

export type Prng = ReturnType<typeof prng>;
