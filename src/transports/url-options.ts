/** A positive integer query parameter of a transport URL, or `fallback` when it is absent. */
export function positiveIntParam(u: URL, name: string, fallback: number): number {
  const raw = u.searchParams.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}
