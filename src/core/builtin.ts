import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A Node built-in module loaded on first use instead of at start-up. Each built-in an agent loads
 * costs memory for as long as it runs (its code is compiled into the heap and its part of the node
 * binary becomes resident): node:http2 alone adds about 2.3 MB RSS, which an agent with no HTTP/2
 * target never needs. The load is synchronous (a built-in needs no I/O), so callers stay synchronous.
 */
export function lazyBuiltin<T>(name: `node:${string}`): () => T {
  let mod: T | undefined;
  return () => (mod ??= require(name) as T);
}
