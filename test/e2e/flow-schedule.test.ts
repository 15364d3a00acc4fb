/**
 * A flow's page shows the canary's schedule (due vs attempted, and a warning when the canary fell behind)
 * and what the coalminer dropped itself, in a real Chromium, from the real /api/v1 router over an
 * in-memory context and store, with the built dashboard served by serveStatic. Screenshot:
 * /tmp/schedule-flow.png.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Auth, hashToken } from '../../src/api/auth.js';
import { serveStatic } from '../../src/api/static.js';
import type { FlowInfo } from '../../src/api/v1/context.js';
import { MemoryContext, MemoryStore } from '../support/memory-context.js';
import { requestListener } from '../../src/api/server.js';
import { createApiV1, type ApiV1 } from '../../src/api/v1/api.js';
import { chromiumAvailable, DIST, ensureBuilt, launchChromium, type LaunchedChromium } from './browser.js';

const TOKEN = 'e2e-schedule-token-7d2a';
const MIN = 60_000;
const available = chromiumAvailable();

function flow(coalminer: string, droppedLocally: number): FlowInfo {
  return {
    canary: 'canary-us',
    coalminer,
    transport: 'redis',
    region: 'eu-west-1',
    status: 'up',
    counts: {
      expected: 36_000,
      received: 35_990,
      lost: 3,
      inFlight: 0,
      sendFailed: 0,
      sendFailedArrived: 0,
      droppedLocally,
      duplicated: 0,
      reordered: 0,
      late: 0,
      stale: 0,
    },
  };
}

describe.skipIf(!available)('a flow page shows the canary schedule in Chromium', () => {
  let browser: LaunchedChromium | undefined;
  let server: Server;
  let api: ApiV1;
  let closeApi: (() => Promise<void>) | undefined;
  let origin: string;

  beforeAll(async () => {
    ensureBuilt();
    const now = Date.now();
    const store = new MemoryStore();
    // Both flows: 10 pings a second, a sample a minute over the last 40 minutes. eu-west's canary fell
    // 42 pings (4.2 s) behind 20 minutes ago and caught up a minute later; us-east's stayed on schedule.
    for (const coalminer of ['eu-west', 'us-east']) {
      for (let k = 40; k > 0; k--) {
        const behind = coalminer === 'eu-west' && k === 20 ? 42 : 0;
        const time = now - k * MIN;
        store.addSchedule({
          time,
          canary: 'canary-us',
          coalminer,
          due: 600,
          attempted: 600 - behind + (coalminer === 'eu-west' && k === 19 ? 42 : 0),
          behind,
          behindSeconds: behind / 10,
        });
        store.addFlow({
          time,
          canary: 'canary-us',
          coalminer,
          received: 600,
          lost: 0,
          duplicated: 0,
          reordered: 0,
          late: 0,
          droppedLocally: coalminer === 'eu-west' && k === 10 ? 7 : 0,
          latencies: [0.004, 0.005, 0.006, 0.012],
        });
      }
    }
    const ctx = new MemoryContext({
      targets: [],
      flows: [flow('eu-west', 7), flow('us-east', 0)],
      store,
      alerts: { rules: [] },
    });
    api = createApiV1(ctx, new Auth([{ name: 'e2e', sha256: hashToken(TOKEN), scopes: ['read'] }]), {
      rateLimit: false,
    });
    const statics = serveStatic(DIST);
    const app = await requestListener({ api, fallback: statics });
    closeApi = app.close;
    server = createServer(app.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await closeApi?.();
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  });

  async function open(coalminer: string): Promise<{ page: Page; problems: string[] }> {
    const page = await browser!.context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    await page.goto(`${origin}/?token=${TOKEN}#/flow/canary-us/${coalminer}`);
    await page.waitForSelector('[data-testid="schedule"]');
    return { page, problems };
  }

  it('warns when the canary fell behind its schedule, with due, attempted and the local drops', async () => {
    const { page, problems } = await open('eu-west');
    const warning = await page.waitForSelector('[data-testid="behind-warning"]');
    expect(await warning.textContent()).toContain('canary behind schedule: 42 pings, 4.20 s');
    const schedule = (await page.textContent('[data-testid="schedule"]'))!;
    expect(schedule).toMatch(/due \(canary\)24\D?000attempted24\D?000$/);
    expect(await page.textContent('[data-testid="dropped-locally"]')).toBe('7');
    expect(await page.textContent('.range-figures')).toContain('dropped by this coalminer7');
    await page.screenshot({ path: '/tmp/schedule-flow.png', fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows no warning for a canary on schedule', async () => {
    const { page, problems } = await open('us-east');
    expect(await page.textContent('[data-testid="schedule"]')).toMatch(/due \(canary\)24\D?000/);
    expect(await page.$('[data-testid="behind-warning"]')).toBeNull();
    expect(await page.textContent('[data-testid="dropped-locally"]')).toBe('0');
    await page.screenshot({ path: '/tmp/schedule-flow-on-schedule.png', fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });
});
