import { execFileSync } from 'node:child_process';

/**
 * Whether an external command a test needs is present. In CI a missing one fails the test run
 * (so CI can never go green by skipping); for a developer it skips with a line saying how to get it.
 */
export function haveCommand(command: string, howToGet: string): boolean {
  let found = true;
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
  } catch {
    found = false;
  }
  if (!found) {
    const line = `${command} is missing: ${howToGet}`;
    if (process.env.CI) throw new Error(`CI: ${line}`);
    console.warn(`skipping: ${line}`);
  }
  return found;
}

/**
 * Whether the native module (ICMP sockets, TCP_INFO) is built and loads, as haveCommand does for
 * commands: in CI, where .ci/run builds it with --strict, a missing one fails the test run instead of
 * letting tests that need it pass without asserting anything.
 */
export function haveNativeAddon(available: boolean, what: string): boolean {
  if (!available) {
    const line = `the native module is not built or does not load, so ${what} cannot be tested: run npm run build:native -- --strict`;
    if (process.env.CI) throw new Error(`CI: ${line}`);
    console.warn(`skipping: ${line}`);
  }
  return available;
}
