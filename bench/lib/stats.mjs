// @ts-check
/** Small statistics and formatting helpers for the bench. */

/**
 * Quantile of a list by linear interpolation between closest ranks (the list need not be sorted).
 * @param {readonly number[]} values
 * @param {number} q 0..1
 * @returns {number}
 */
export function quantile(values, q) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = /** @type {number} */ (s[lo]);
  const b = /** @type {number} */ (s[hi]);
  return a + (b - a) * (pos - lo);
}

/** @param {readonly number[]} values */
export const median = (values) => quantile(values, 0.5);

/**
 * p10 / p50 / p90 / min / max / n of a sample, for the JSON report.
 * @param {readonly number[]} values
 */
export function summary(values) {
  return {
    n: values.length,
    min: values.length ? Math.min(...values) : NaN,
    p10: quantile(values, 0.1),
    p50: quantile(values, 0.5),
    p90: quantile(values, 0.9),
    max: values.length ? Math.max(...values) : NaN,
  };
}

/**
 * Seconds as a short human string in the unit that suits it.
 * @param {number | undefined} s
 */
export function fmtSeconds(s) {
  if (s === undefined || !Number.isFinite(s)) return 'n/a';
  const a = Math.abs(s);
  if (a >= 1) return `${s.toFixed(3)} s`;
  if (a >= 1e-3) return `${(s * 1e3).toFixed(2)} ms`;
  return `${(s * 1e6).toFixed(1)} µs`;
}

/** @param {number | undefined} r */
export function fmtRatio(r) {
  return r === undefined || !Number.isFinite(r) ? 'n/a' : `${r.toFixed(2)}x`;
}

/** @param {number} n */
export function fmtRate(n) {
  return Number.isFinite(n) ? `${Math.round(n)}/s` : 'n/a';
}
