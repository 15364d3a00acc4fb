/**
 * The dashboard of a running demo in a real Chromium: the real agent, its real API, results store and
 * event stream, probing the example service and pinging two coalminers. Screenshots go to test-artifacts/.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type Io } from '../../src/cli/main.js';
import {
  ARTIFACTS,
  chromiumAvailable,
  ensureBuilt,
  launchChromium,
  type LaunchedChromium,
} from './browser.js';

const hasChromium = chromiumAvailable();

describe.skipIf(!hasChromium)('the dashboard of a running demo', () => {
  const out: string[] = [];
  let demo: Promise<number>;
  let browser: LaunchedChromium | undefined;
  let page: Page;
  let url: string;

  beforeAll(async () => {
    ensureBuilt(); // the agent serves dist/web
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
    browser = await launchChromium();
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
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

    // The Alerts view lists the demo's rules as the agent evaluates them: all healthy, with values.
    await page.click('text=Alerts');
    await page.waitForSelector('[data-testid="alert-rules"]');
    for (const rule of ['example-http-slow', 'example-tcp-down', 'eu-west-loss', 'ap-southeast-silent'])
      await expect
        .poll(() => page.getAttribute(`tr[data-rule="${rule}"]`, 'data-state'), { timeout: 15_000 })
        .toBe('ok');
    // Evaluated with data: the flow's loss and the probe latency have a measured value.
    await expect
      .poll(() => page.textContent('tr[data-rule="example-http-slow"] [data-testid="last-value"]'), {
        timeout: 15_000,
      })
      .toMatch(/\d/);
    await expect
      .poll(() => page.textContent('tr[data-rule="eu-west-loss"] [data-testid="last-value"]'), {
        timeout: 15_000,
      })
      .toMatch(/0(\.0+)?\s?%/);
    // noData's value is how long the flow has been silent: pings keep arriving, so about none.
    await expect
      .poll(() => page.textContent('tr[data-rule="ap-southeast-silent"] [data-testid="last-value"]'), {
        timeout: 15_000,
      })
      .toMatch(/^\d+(\.\d)? s silent$/);
    await page.screenshot({ path: join(ARTIFACTS, 'demo-alerts.png') });
    expect(errors).toEqual([]);
  }, 90_000);
});
