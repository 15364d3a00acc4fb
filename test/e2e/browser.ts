/**
 * What the browser tests share: where Chromium is (Debian's package, driven by playwright-core), the
 * dashboard built into dist/web, and a headless persistent context with a throwaway profile.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const REPO = resolve(import.meta.dirname, '../..');
export const WEB = join(REPO, 'web');
export const DIST = join(REPO, 'dist', 'web');
export const ARTIFACTS = join(REPO, 'test-artifacts');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Whether Chromium is installed; on CI its absence is an error, elsewhere a skip with the reason. */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  const line = `chromium is missing: apt-get install chromium (looked for ${CHROMIUM})`;
  if (process.env.CI) throw new Error(`CI: ${line}`);
  console.warn(`skipping: ${line}`);
  return false;
}

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

/** Builds dist/web when it is missing or older than any source of the dashboard. */
export function ensureBuilt(): void {
  const index = join(DIST, 'index.html');
  const sources = Math.max(
    newestMtime(join(WEB, 'src')),
    newestMtime(join(WEB, 'index.html')),
    newestMtime(join(WEB, 'vite.config.ts')),
  );
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  execFileSync('npx', ['vite', 'build', '--config', 'web/vite.config.ts'], {
    cwd: REPO,
    stdio: 'pipe',
    timeout: 120_000,
    // vitest sets NODE_ENV=test, which would make Vite bundle Preact's development build.
    env: { ...process.env, NODE_ENV: 'production' },
  });
}

export interface LaunchedChromium {
  context: BrowserContext;
  /** Ends the browser and removes its profile. Idempotent. */
  close(): Promise<void>;
}

/** A headless Chromium with a fresh profile. */
export async function launchChromium(): Promise<LaunchedChromium> {
  const profile = await mkdtemp(join(tmpdir(), 'coalmine-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  let closed: Promise<void> | undefined;
  return {
    context,
    close: () =>
      (closed ??= (async () => {
        await context.close();
        await rm(profile, { recursive: true, force: true });
      })()),
  };
}
