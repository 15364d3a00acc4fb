/**
 * The dashboard of a running demo in a real Chromium: the real agent, its real API, results store and
 * event stream, probing the example service and pinging two coalminers. Screenshots go to test-artifacts/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type Io } from '../../src/cli/main.js';

const REPO = resolve(import.meta.dirname, '../..');
const ARTIFACTS = join(REPO, 'test-artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  const line = `chromium is missing: apt-get install chromium (looked for ${CHROMIUM})`;
  if (process.env.CI) throw new Error(`CI: ${line}`);
  console.warn(`skipping: ${line}`);
  return false;
}

const hasChromium = chromiumAvailable();
const built = existsSync(join(REPO, 'dist/web/index.html'));
if (!built) {
  const line = 'the dashboard is not built: npm run build';
  if (process.env.CI) throw new Error(`CI: ${line}`);
  console.warn(`skipping: ${line}`);
}

describe.skipIf(!hasChromium || !built)('the dashboard of a running demo', () => {
  const out: string[] = [];
  let demo: Promise<number>;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  let url: string;

  beforeAll(async () => {
    const io: Io = { out: (l) => out.push(l), err: () => {}, isTty: false };
    demo = main(
      ['node', 'coalmine', 'demo', '--listen', '127.0.0.1:0', '--interval', '1s', '--duration', '40s'],
      io,
    );
    const deadline = Date.now() + 20_000;
    while (!url && Date.now() < deadline) {
      const m = /dashboard {8}(http:\/\/\S+)/.exec(out.join('\n'));
      if (m) url = m[1]!;
      else await new Promise((r) => setTimeout(r, 100));
    }
    expect(url).toMatch(/\?token=/);
    profile = await mkdtemp(join(tmpdir(), 'coalmine-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
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
    page = context.pages()[0] ?? (await context.newPage());
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    process.emit('SIGTERM');
    await demo;
  });

  it('shows live data from the agent, a detail page, and runs a check now', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url);
    // The token leaves the address bar; the overview lists every target and both flows.
    await expect.poll(() => page.url()).not.toContain('token=');
    for (const name of ['example-http', 'example-tcp', 'example-dns', 'loopback-icmp']) {
      await page.waitForSelector(`[data-name="${name}"]`, { timeout: 15_000 });
    }
    await expect.poll(() => page.locator('a.row').count(), { timeout: 15_000 }).toBeGreaterThanOrEqual(6);
    await expect
      .poll(() => page.textContent('[data-testid="connection"]'), { timeout: 15_000 })
      .toContain('live');
    // Live data arrives: the http target's latest value changes as the agent probes it every second.
    const cell = '[data-name="example-http"] [data-testid="last"]';
    const first = await page.textContent(cell);
    await expect.poll(() => page.textContent(cell), { timeout: 15_000 }).not.toBe(first);
    await page.screenshot({ path: join(ARTIFACTS, 'demo-overview.png') });

    // The detail page draws its chart from the store's series.
    await page.click('[data-name="example-http"]');
    await page.waitForSelector('[data-testid="detail-title"]');
    expect(await page.textContent('[data-testid="detail-title"]')).toContain('example-http');
    await page.waitForSelector('[data-testid="smoke-chart"] canvas', { timeout: 15_000 });
    await page.click('[data-testid="check-now"]');
    await expect
      .poll(() => page.textContent('[data-testid="check-result"]'), { timeout: 15_000 })
      .toMatch(/ok|OK|✓|succeeded/i);
    await page.screenshot({ path: join(ARTIFACTS, 'demo-detail.png') });

    // The region matrix shows the canary against both coalminers.
    await page.click('text=Matrix');
    await page.waitForSelector('[data-testid="matrix"]');
    const matrix = (await page.textContent('[data-testid="matrix"]')) ?? '';
    for (const name of ['demo-canary', 'eu-west', 'ap-southeast']) expect(matrix).toContain(name);
    await page.screenshot({ path: join(ARTIFACTS, 'demo-matrix.png') });
    expect(errors).toEqual([]);
  }, 90_000);
});
