/**
 * The dashboard in a real Chromium (Debian's package, driven by playwright-core) against a test double
 * of the API (./api-double.ts) that serves the built bundle through serveStatic. Screenshots go to
 * test-artifacts/.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSeconds } from '../../web/src/format.js';
import { DOUBLE_CANARIES, DOUBLE_COALMINERS, startApiDouble, type ApiDouble } from './api-double.js';
import {
  ARTIFACTS,
  chromiumAvailable,
  DIST,
  ensureBuilt,
  launchChromium,
  type LaunchedChromium,
} from './browser.js';

const TOKEN = 'e2e-token-5f1c';

/**
 * The few browser APIs the in-page functions use: this project's tsconfig has no DOM lib (adding it
 * would change timer types for all Node code). Each in-page function casts `globalThis` itself, since
 * only its own source travels to the page.
 */
interface PageElement {
  textContent: string | null;
  value: string;
  dispatchEvent(e: unknown): boolean;
}
interface PageCanvas {
  width: number;
  height: number;
  getContext(
    kind: '2d',
  ): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
}
interface PageWindow {
  document: {
    body: unknown;
    querySelector(selector: string): PageElement | null;
    querySelectorAll(selector: string): { length: number };
  };
  sessionStorage: { getItem(key: string): string | null };
  getComputedStyle(e: unknown): { backgroundColor: string };
  requestAnimationFrame(cb: () => void): number;
  Event: new (type: string, init?: { bubbles?: boolean }) => unknown;
}

const available = chromiumAvailable();

describe.skipIf(!available)('dashboard in Chromium', () => {
  let double: ApiDouble;
  let big: ApiDouble;
  let browser: LaunchedChromium | undefined;
  let context: BrowserContext;

  beforeAll(async () => {
    ensureBuilt();
    mkdirSync(ARTIFACTS, { recursive: true });
    double = await startApiDouble({ root: DIST, token: TOKEN, targets: 40 });
    big = await startApiDouble({
      root: DIST,
      token: TOKEN,
      targets: 1000,
      probesPerBatch: 100, // 500 probe events a second
    });
    browser = await launchChromium();
    context = browser.context;
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await double?.close();
    await big?.close();
  });

  async function open(d: ApiDouble, path = `/?token=${TOKEN}`): Promise<Page> {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().includes('401')) problems.push(m.text());
    });
    (page as Page & { problems: string[] }).problems = problems;
    await page.goto(d.url + path);
    return page;
  }
  const problemsOf = (page: Page) => (page as Page & { problems: string[] }).problems;

  async function canvasInk(page: Page, selector: string): Promise<number> {
    return page.$$eval(selector, (canvases) => {
      let ink = 0;
      for (const c of canvases as unknown as PageCanvas[]) {
        const ctx = c.getContext('2d');
        if (!ctx || c.width === 0 || c.height === 0) continue;
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) ink++;
      }
      return ink;
    });
  }

  it('loads the overview, hides the token, fills in and updates live', async () => {
    const page = await open(double);
    // The token left the address bar for sessionStorage, and the API saw it as a bearer token.
    await page.waitForSelector('[data-name="http-0000"]');
    expect(page.url()).not.toContain('token');
    expect(
      await page.evaluate(() =>
        (globalThis as unknown as PageWindow).sessionStorage.getItem('coalmine.token'),
      ),
    ).toBe(TOKEN);
    expect(double.requests.find((r) => r.path === '/api/v1/targets')?.auth).toBe(`Bearer ${TOKEN}`);
    expect(double.requests.some((r) => r.path === '/api/v1/events' && r.query.token === TOKEN)).toBe(true);

    const flowCount = (await page.$$('[data-flow]')).length;
    expect(flowCount).toBeGreaterThan(0);
    await expect.poll(() => page.textContent('[data-testid="counts"]')).toContain(`${40 + 6} shown`);
    expect(await page.textContent('[data-testid="counts"]')).toContain('6 down');
    // Down targets sort first.
    expect(await page.getAttribute('.row-wrap:first-child .row', 'data-status')).toBe('down');
    expect(await page.textContent('[data-testid="connection"]')).toContain('live');
    expect(await canvasInk(page, '[data-name="http-0000"] canvas')).toBeGreaterThan(20);

    // Live: the first target's latest value becomes one the event stream sent.
    const cell = '[data-name="http-0000"] [data-testid="last"]';
    const before = await page.textContent(cell);
    await expect
      .poll(
        async () => {
          const now = await page.textContent(cell);
          const emitted = (double.sent.get('http-0000') ?? []).map((r) => formatSeconds(r.durationSeconds));
          return now !== before && emitted.includes(now ?? '');
        },
        { timeout: 5000 },
      )
      .toBe(true);

    // The filter narrows the list.
    await page.fill('.filter', 'dns-001');
    await expect
      .poll(() => page.$$eval('.row', (rows) => rows.map((r) => r.getAttribute('data-name'))))
      .toEqual(expect.arrayContaining(['dns-0010', 'dns-0014', 'dns-0018']));
    expect(
      await page.$$eval('.row', (rows) =>
        rows.every((r) => r.getAttribute('data-name')?.startsWith('dns-001')),
      ),
    ).toBe(true);
    await page.fill('.filter', '');
    await page.screenshot({ path: join(ARTIFACTS, 'overview-light.png') });
    expect(problemsOf(page)).toEqual([]);
    await page.close();
  });

  it('opens a target detail with rendered charts, switches range and checks now', async () => {
    const page = await open(double);
    await page.click('[data-name="http-0004"]');
    await page.waitForSelector('[data-testid="smoke-chart"] canvas');
    expect(await page.textContent('[data-testid="detail-title"]')).toContain('http-0004');
    await page.waitForSelector('[data-testid="phases-chart"] canvas');
    await expect
      .poll(() => canvasInk(page, '[data-testid="smoke-chart"] canvas'), { timeout: 5000 })
      .toBeGreaterThan(5000);
    await expect.poll(() => canvasInk(page, '[data-testid="heatmap"]')).toBeGreaterThan(5000);
    await expect.poll(() => canvasInk(page, '[data-testid="phases-chart"] canvas')).toBeGreaterThan(5000);
    const firstSeries = double.requests.filter((r) => r.path === '/api/v1/targets/http-0004/series').at(-1)!;
    expect(Number(firstSeries.query.to) - Number(firstSeries.query.from)).toBe(3_600_000);

    await page.click('.segmented button:text-is("6h")');
    await expect
      .poll(() => {
        const r = double.requests.filter((q) => q.path === '/api/v1/targets/http-0004/series').at(-1)!;
        return Number(r.query.to) - Number(r.query.from);
      })
      .toBe(6 * 3_600_000);
    await page.waitForSelector('text=/steps of 2m/');

    await page.click('[data-testid="check-now"]');
    await page.waitForSelector('[data-testid="check-result"] .result');
    const result = await page.textContent('[data-testid="check-result"]');
    expect(result).toContain('OK');
    expect(result).toContain('status 200');
    expect(
      double.requests.some(
        (r) => r.method === 'POST' && r.path === '/api/v1/check' && r.query.target === 'http-0004',
      ),
    ).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'detail-target-light.png'), fullPage: true });

    // A down target's check shows the failure.
    await page.goto(`${double.url}/#/target/icmp-0003`);
    await page.click('[data-testid="check-now"]');
    await page.waitForSelector('[data-testid="check-result"] .result.failed');
    expect(await page.textContent('[data-testid="check-result"]')).toContain('timeout');
    expect(problemsOf(page)).toEqual([]);
    await page.close();
  });

  it('opens a flow detail with loss, duplicate and reorder markers', async () => {
    const page = await open(double, `/?token=${TOKEN}#/flow/canary-eu/sa-east`);
    await page.waitForSelector('[data-testid="smoke-chart"] canvas');
    await expect
      .poll(() => canvasInk(page, '[data-testid="smoke-chart"] canvas'), { timeout: 5000 })
      .toBeGreaterThan(5000);
    const legend = await page.textContent('.smoke .legend-note');
    expect(legend).toContain('duplicates');
    expect(legend).toContain('reordered');
    expect(await page.textContent('.facts')).toContain('lost');
    await page.screenshot({ path: join(ARTIFACTS, 'detail-flow-light.png'), fullPage: true });
    // The log axis redraws the same data.
    await page.check('.log-toggle input');
    await expect
      .poll(() => canvasInk(page, '[data-testid="smoke-chart"] canvas'), { timeout: 5000 })
      .toBeGreaterThan(5000);
    await page.locator('.smoke').screenshot({ path: join(ARTIFACTS, 'detail-flow-log.png') });
    expect(problemsOf(page)).toEqual([]);
    await page.close();
  });

  it('shows the region matrix and a dark theme', async () => {
    const page = await open(double);
    await page.click('nav a:text-is("Matrix")');
    await page.waitForSelector('[data-testid="matrix"] td.cell');
    expect(await page.$$eval('[data-testid="matrix"] tbody tr', (r) => r.length)).toBe(
      DOUBLE_CANARIES.length,
    );
    expect(await page.$$eval('[data-testid="matrix"] thead th', (r) => r.length)).toBe(
      DOUBLE_COALMINERS.length + 1,
    );
    expect(await page.$$eval('[data-testid="matrix"] td.lossy', (r) => r.length)).toBeGreaterThan(0);
    expect(await page.$$eval('[data-testid="matrix"] td.none', (r) => r.length)).toBeGreaterThan(0);
    await page.screenshot({ path: join(ARTIFACTS, 'matrix-light.png') });

    const bg = () =>
      page.evaluate(() => {
        const w = globalThis as unknown as PageWindow;
        return w.getComputedStyle(w.document.body).backgroundColor;
      });
    const light = await bg();
    // auto (light here) -> dark
    await page.click('[data-testid="theme-toggle"]');
    expect(await page.getAttribute('html', 'data-theme')).toBe('dark');
    const dark = await bg();
    expect(dark).not.toBe(light);
    const luminance = (rgb: string) => {
      const [r, g, b] = rgb.match(/\d+/g)!.map(Number) as [number, number, number];
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    expect(luminance(dark)).toBeLessThan(60);
    expect(luminance(light)).toBeGreaterThan(200);
    await page.screenshot({ path: join(ARTIFACTS, 'matrix-dark.png') });
    await page.click('nav a:text-is("Overview")');
    await page.waitForSelector('[data-name="http-0000"]');
    await page.screenshot({ path: join(ARTIFACTS, 'overview-dark.png') });
    await page.goto(`${double.url}/#/target/http-0000`);
    await page.waitForSelector('[data-testid="smoke-chart"] canvas');
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(ARTIFACTS, 'detail-target-dark.png'), fullPage: true });
    // The choice is remembered.
    await page.reload();
    expect(await page.getAttribute('html', 'data-theme')).toBe('dark');
    expect(problemsOf(page)).toEqual([]);
    await page.close();
  });

  it('says clearly when the token is refused', async () => {
    const page = await open(double, '/?token=wrong');
    await page.waitForSelector('[data-testid="unauthorized"]');
    expect(await page.textContent('[data-testid="unauthorized"]')).toContain('refused the token');
    await page.screenshot({ path: join(ARTIFACTS, 'unauthorized.png') });
    await page.close();
  });

  it('stays responsive with 1,000 targets and 500 events a second', async () => {
    const page = await open(big);
    await page.waitForSelector('[data-name]');
    await expect.poll(() => page.textContent('[data-testid="counts"]')).toContain('1006 shown');
    // Virtualised: only the rows on screen exist.
    expect(await page.$$eval('.row', (r) => r.length)).toBeLessThan(80);
    await expect.poll(() => big.sent.size, { timeout: 5000 }).toBeGreaterThan(200);

    // Time from typing into the filter to the filtered list being on screen, measured in the page.
    const measure = (text: string, expectCounts: string) =>
      page.evaluate(
        ({ text, expectCounts }) =>
          new Promise<number>((resolve, reject) => {
            const w = globalThis as unknown as PageWindow;
            const input = w.document.querySelector('.filter')!;
            const counts = w.document.querySelector('[data-testid="counts"]')!;
            const t0 = performance.now();
            input.value = text;
            input.dispatchEvent(new w.Event('input', { bubbles: true }));
            const check = () => {
              if (counts.textContent?.includes(expectCounts)) return resolve(performance.now() - t0);
              if (performance.now() - t0 > 5000)
                return reject(new Error(`filter did not apply: ${counts.textContent}`));
              w.requestAnimationFrame(check);
            };
            w.requestAnimationFrame(check);
          }),
        { text, expectCounts },
      );
    const times = [
      await measure('tcp-0999', '0 of 1006 shown'),
      await measure('dns-0998', '1 of 1006 shown'),
      await measure('http-09', '25 of 1006 shown'),
      await measure('', '1006 shown'),
    ];
    expect(await page.$$eval('.row', (r) => r.length)).toBeGreaterThan(10);
    for (const ms of times) expect(ms).toBeLessThan(200);

    // Scrolling to the end shows the last rows.
    await page.fill('.filter', 'http');
    await page.$eval('[data-testid="rows"]', (el) => (el.scrollTop = el.scrollHeight));
    await page.waitForSelector('[data-name="http-0996"]');

    // No long stalls while events stream in.
    const longest = await page.evaluate(
      () =>
        new Promise<number>((resolve) => {
          const w = globalThis as unknown as PageWindow;
          let worst = 0;
          let last = performance.now();
          const start = last;
          const frame = () => {
            const now = performance.now();
            worst = Math.max(worst, now - last);
            last = now;
            if (now - start < 2000) w.requestAnimationFrame(frame);
            else resolve(worst);
          };
          w.requestAnimationFrame(frame);
        }),
    );
    expect(longest).toBeLessThan(200);
    await page.fill('.filter', '');
    await page.screenshot({ path: join(ARTIFACTS, 'overview-1000.png') });
    expect(problemsOf(page)).toEqual([]);
    await page.close();
  }, 60_000);
});
