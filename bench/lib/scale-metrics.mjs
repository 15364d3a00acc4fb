// @ts-check
/**
 * Reading the agent's own /metrics for bench/scale.mjs: counters summed over their labels, and
 * histograms (summed over labels) whose quantiles are stated as the bucket they fall in, since a
 * bucketed histogram cannot say more.
 */

/**
 * The samples of the named metric families (a family's name matches `name`, `name_bucket`,
 * `name_count`, `name_sum`, `name_total`), each as its label text and value.
 * @param {string} text Prometheus text exposition
 * @param {readonly string[]} families
 * @returns {Map<string, { labels: string, value: number }[]>} keyed by the sample's own name
 */
export function pickSamples(text, families) {
  const want = new Set();
  for (const f of families) for (const s of ['', '_bucket', '_count', '_sum', '_total']) want.add(f + s);
  /** @type {Map<string, { labels: string, value: number }[]>} */
  const out = new Map();
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    if (text.charCodeAt(pos) !== 35 /* # */ && end > pos) {
      const brace = text.indexOf('{', pos);
      const space = text.indexOf(' ', pos);
      const nameEnd = brace >= 0 && brace < end && (space < 0 || brace < space) ? brace : space;
      if (nameEnd > pos && nameEnd < end) {
        const name = text.slice(pos, nameEnd);
        if (want.has(name)) {
          const line = text.slice(pos, end);
          const close = line.lastIndexOf('}');
          const labels = line[nameEnd - pos] === '{' ? line.slice(nameEnd - pos + 1, close) : '';
          const rest = line.slice(close >= 0 ? close + 1 : nameEnd - pos).trim();
          const value = Number(rest.split(' ')[0]);
          let list = out.get(name);
          if (!list) out.set(name, (list = []));
          list.push({ labels, value });
        }
      }
    }
    pos = end + 1;
  }
  return out;
}

/**
 * Sum of a sample name's values whose labels include every one of `match` (like `reason="overlap"`).
 * @param {Map<string, { labels: string, value: number }[]>} samples
 * @param {string} name
 * @param {string[]} [match]
 */
export function sumOf(samples, name, match = []) {
  let sum = 0;
  for (const s of samples.get(name) ?? []) if (match.every((m) => s.labels.includes(m))) sum += s.value;
  return sum;
}

/** Distinct values of one label across a sample name. @param {Map<string, { labels: string, value: number }[]>} samples @param {string} name @param {string} label */
export function distinctLabel(samples, name, label) {
  const re = new RegExp(`(?:^|,)${label}="([^"]*)"`);
  const seen = new Set();
  for (const s of samples.get(name) ?? []) {
    const m = re.exec(s.labels);
    if (m) seen.add(m[1]);
  }
  return seen.size;
}

/**
 * A histogram family summed over its other labels: cumulative counts per upper bound.
 * @typedef {{ les: number[], cum: number[], count: number, sum: number }} Hist
 * @param {Map<string, { labels: string, value: number }[]>} samples
 * @param {string} name
 * @returns {Hist | undefined}
 */
export function histogramOf(samples, name) {
  const buckets = samples.get(`${name}_bucket`);
  if (!buckets) return undefined;
  /** @type {Map<number, number>} */
  const byLe = new Map();
  for (const b of buckets) {
    const m = /le="([^"]+)"/.exec(b.labels);
    if (!m) continue;
    const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
    byLe.set(le, (byLe.get(le) ?? 0) + b.value);
  }
  const les = [...byLe.keys()].sort((a, b) => a - b);
  return {
    les,
    cum: les.map((le) => /** @type {number} */ (byLe.get(le))),
    count: sumOf(samples, `${name}_count`),
    sum: sumOf(samples, `${name}_sum`),
  };
}

/** What was observed between two readings of one histogram. @param {Hist} after @param {Hist | undefined} before @returns {Hist} */
export function histDelta(after, before) {
  if (!before) return after;
  return {
    les: after.les,
    cum: after.cum.map((c, i) => {
      const j = before.les.indexOf(/** @type {number} */ (after.les[i]));
      return c - (j >= 0 ? /** @type {number} */ (before.cum[j]) : 0);
    }),
    count: after.count - before.count,
    sum: after.sum - before.sum,
  };
}

/**
 * The bucket holding quantile q: { lo, hi } bounds in the histogram's unit (hi is Infinity past the
 * last finite bucket).
 * @param {Hist} h @param {number} q
 */
export function quantileBucket(h, q) {
  if (h.count <= 0) return undefined;
  const rank = q * h.count;
  for (let i = 0; i < h.les.length; i++)
    if (/** @type {number} */ (h.cum[i]) >= rank)
      return { lo: i > 0 ? /** @type {number} */ (h.les[i - 1]) : 0, hi: /** @type {number} */ (h.les[i]) };
  return { lo: /** @type {number} */ (h.les[h.les.length - 1]), hi: Infinity };
}

/** The bucket of the largest observation. @param {Hist} h */
export function maxBucket(h) {
  if (h.count <= 0) return undefined;
  for (let i = 0; i < h.les.length; i++)
    if (/** @type {number} */ (h.cum[i]) >= h.count)
      return { lo: i > 0 ? /** @type {number} */ (h.les[i - 1]) : 0, hi: /** @type {number} */ (h.les[i]) };
  return undefined;
}

/** Observations above `le` (which must be one of the bounds). @param {Hist} h @param {number} le */
export function countAbove(h, le) {
  const i = h.les.indexOf(le);
  return i < 0 ? NaN : h.count - /** @type {number} */ (h.cum[i]);
}
