import { UrlOptions } from '../url-options.js';

/** `memory://NAME`: every memory transport with the same NAME shares one in-process bus. No options. */
export function checkUrl(url: string): string[] {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return ['not a valid URL (expected memory://NAME)'];
  }
  if (u.protocol !== 'memory:') return ['the scheme must be memory://'];
  return new UrlOptions(u.searchParams, [], 'memory').problems;
}
