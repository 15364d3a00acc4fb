/**
 * Which coalminers may register with a canary: exact names and globs over names, where `*` stands for
 * any run of characters (none included) and `?` for exactly one. Globs rather than regular expressions
 * so that a pattern from a config file can never backtrack badly: matching takes at most
 * pattern length x name length steps (both at most 64).
 */
export class AllowList {
  private readonly names = new Set<string>();
  private readonly globs: string[] = [];

  constructor(entries: readonly string[]) {
    for (const e of entries) {
      if (/[*?]/.test(e)) this.globs.push(e);
      else this.names.add(e);
    }
  }

  allows(name: string): boolean {
    return this.names.has(name) || this.globs.some((g) => globMatch(g, name));
  }
}

/**
 * Whether `s` matches `pattern` (`*` any run, `?` one character). Greedy with one saved star: when a
 * match after the last `*` fails, that star takes one more character. Earlier stars never need to be
 * revisited, so there is no exponential backtracking.
 */
export function globMatch(pattern: string, s: string): boolean {
  let p = 0;
  let i = 0;
  let star = -1;
  let from = 0;
  while (i < s.length) {
    const c = pattern[p];
    if (c === '*') {
      star = p++;
      from = i;
    } else if (c !== undefined && (c === '?' || c === s[i])) {
      p++;
      i++;
    } else if (star >= 0) {
      p = star + 1;
      i = ++from;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}
