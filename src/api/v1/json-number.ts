/** Below 1e-6 JSON writes a number in exponent form (5e-7): those take JSON.stringify. */
const FIXED_FROM_NS = 1000;
/** Up to 15 significant digits every decimal survives a round trip through a double. */
const EXACT_BELOW_NS = 1e15;
const ZEROS = '000000000';

/**
 * The JSON text of a number, exactly as JSON.stringify writes it, fast for the API's seconds (whole
 * nanoseconds / 1e9, see store/overview-recent.ts seconds()). At 10,000 targets an overview holds 600,000
 * of them, and V8's shortest-double formatting of each was most of the answer's JSON time. A double equal
 * to n / 1e9 with n a whole number of at most 15 digits has n's digits as its shortest round-trip form
 * (no other decimal of 15 digits or fewer is that double), so its text is n's decimal with the point
 * moved nine places; anything else goes to JSON.stringify.
 */
export function jsonNumber(x: number | null): string {
  if (x === null) return 'null';
  const n = Math.round(x * 1e9);
  if (n / 1e9 !== x || n < FIXED_FROM_NS || n >= EXACT_BELOW_NS) return JSON.stringify(x);
  const s = String(n);
  let end = s.length;
  while (s.charCodeAt(end - 1) === 48 /* 0 */) end--;
  const point = s.length - 9;
  if (point <= 0) return `0.${ZEROS.slice(s.length)}${s.slice(0, end)}`;
  return end <= point ? s.slice(0, point) : `${s.slice(0, point)}.${s.slice(point, end)}`;
}
