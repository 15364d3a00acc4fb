/** Sorted lists of disjoint, inclusive integer ranges: how sequence-number sets stay small. */
export interface Range {
  a: number;
  b: number;
}

/**
 * Removes [a, b] from a sorted list of disjoint ranges, splitting where needed (extra fields such as a
 * gap's noticedMs are kept on both halves). Returns the pieces removed, in order.
 */
export function subtract<T extends Range>(ranges: T[], a: number, b: number): Range[] {
  const removed: Range[] = [];
  let i = firstEndingFrom(ranges, a);
  while (i < ranges.length && ranges[i]!.a <= b) {
    const r = ranges[i]!;
    const ra = Math.max(r.a, a);
    const rb = Math.min(r.b, b);
    removed.push({ a: ra, b: rb });
    if (r.a < ra && r.b > rb) {
      ranges.splice(i + 1, 0, { ...r, a: rb + 1 });
      r.b = ra - 1;
      break;
    } else if (r.a < ra) {
      r.b = ra - 1;
      i++;
    } else if (r.b > rb) {
      r.a = rb + 1;
      break;
    } else {
      ranges.splice(i, 1);
    }
  }
  return removed;
}

/** Adds [a, b] to a sorted list of disjoint ranges, merging what touches or overlaps. */
export function addRange(ranges: Range[], a: number, b: number): void {
  // A range ending at a - 1 touches [a, b] and merges with it.
  const lo = firstEndingFrom(ranges, a - 1);
  let end = lo;
  let na = a;
  let nb = b;
  while (end < ranges.length && ranges[end]!.a <= b + 1) {
    na = Math.min(na, ranges[end]!.a);
    nb = Math.max(nb, ranges[end]!.b);
    end++;
  }
  ranges.splice(lo, end - lo, { a: na, b: nb });
}

/** The parts of [a, b] that no range of `ranges` (sorted, disjoint, as addRange keeps them) covers. */
export function uncovered(ranges: readonly Range[], a: number, b: number): Range[] {
  const out: Range[] = [];
  let next = a;
  for (let i = firstEndingFrom(ranges, a); i < ranges.length && ranges[i]!.a <= b; i++) {
    const r = ranges[i]!;
    if (r.a > next) out.push({ a: next, b: r.a - 1 });
    next = Math.max(next, r.b + 1);
  }
  if (next <= b) out.push({ a: next, b });
  return out;
}

/** The index of the first range that ends at or after `a` (binary search; ranges.length if none). */
function firstEndingFrom(ranges: readonly Range[], a: number): number {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid]!.b < a) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
