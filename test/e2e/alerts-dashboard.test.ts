/**
 * The dashboard's alerts view in a real Chromium against the API double (./api-double.ts), whose alert
 * routes are the real router over in-memory alerting: rule states, live `alert` events, creating and
 * expiring silences, and what a read-only token sees. Screenshots go to test-artifacts/.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startApiDouble, type ApiDouble, type ApiDoubleOptions } from './api-double.js';
import {
  ARTIFACTS,
  chromiumAvailable,
  DIST,
  ensureBuilt,
  launchChromium,
  type LaunchedChromium,
} from './browser.js';

const TOKEN = 'e2e-writer-token-7a2d';
const READ_TOKEN = 'e2e-reader-token-91c3';

/** The browser APIs the in-page functions use (this project's tsconfig has no DOM lib). */
interface PageWindow {
  getComputedStyle(e: unknown): { backgroundColor: string; color: string };
  scrollTo(x: number, y: number): void;
}

/** A full-page screenshot from the top, so the sticky header sits where it belongs. */
async function screenshot(page: Page, name: string): Promise<void> {
  await page.evaluate(() => (globalThis as unknown as PageWindow).scrollTo(0, 0));
  await page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });
}

const available = chromiumAvailable();

describe.skipIf(!available)('alerts view in Chromium', () => {
  let browser: LaunchedChromium | undefined;
  const doubles: ApiDouble[] = [];
  const pages: Page[] = [];

  beforeAll(async () => {
    ensureBuilt();
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await launchChromium();
  }, 180_000);

  afterEach(async () => {
    for (const p of pages.splice(0)) await p.close();
    for (const d of doubles.splice(0)) await d.close();
  });

  afterAll(async () => {
    await browser?.close();
  });

  async function double(opts: Partial<ApiDoubleOptions> = {}): Promise<ApiDouble> {
    const d = await startApiDouble({
      root: DIST,
      token: TOKEN,
      readToken: READ_TOKEN,
      targets: 40,
      eventEveryMs: 1000,
      ...opts,
    });
    doubles.push(d);
    return d;
  }

  /** Opens the alerts view; the page's errors (uncaught, and console errors but `allow`) are collected. */
  async function open(d: ApiDouble, token = TOKEN, allow?: RegExp): Promise<Page & { problems: string[] }> {
    const page = (await browser!.context.newPage()) as Page & { problems: string[] };
    pages.push(page);
    page.problems = [];
    page.on('pageerror', (e) => page.problems.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !(allow && allow.test(m.text()))) page.problems.push(m.text());
    });
    await page.goto(`${d.url}/?token=${token}#/alerts`);
    await page.waitForSelector('[data-testid="alert-rules"] tr[data-rule]');
    return page;
  }

  const stateOf = (page: Page, rule: string) => page.getAttribute(`tr[data-rule="${rule}"]`, 'data-state');
  const cell = (page: Page, rule: string, testid: string) =>
    page.textContent(`tr[data-rule="${rule}"] [data-testid="${testid}"]`);
  const colour = (page: Page, selector: string) =>
    page
      .locator(selector)
      .first()
      .evaluate((el) => (globalThis as unknown as PageWindow).getComputedStyle(el).backgroundColor);

  it('lists every rule with its state, subject, condition, value and since, firing first', async () => {
    const d = await double();
    const page = await open(d);
    const rules = d.alerts!.rules();
    const lossRule = rules.find((r) => r.rule.startsWith('loss-'))!;
    const lossFlow = lossRule.subject as { canary: string; coalminer: string };

    const shown = await page.$$eval('[data-testid="alert-rules"] tbody tr', (rows) =>
      rows.map((r) => [r.getAttribute('data-rule'), r.getAttribute('data-state')]),
    );
    expect(shown).toEqual([
      ['icmp-0003-failing', 'firing'],
      [lossRule.rule, 'firing'],
      ['http-0004-p95', 'pending'],
      [expect.stringMatching(/^p99-/), 'resolved'],
      ['http-0000-p95', 'ok'],
      ['http-0008-cert', 'ok'],
    ]);
    expect(
      await page.$$eval('[data-testid="alert-counts"] > span', (s) => s.map((x) => x.textContent)),
    ).toEqual(['2 firing', '1 pending', '1 resolved', '2 ok']);
    // Each state has a colour of its own.
    const pills = await Promise.all(
      ['firing', 'pending', 'resolved', 'ok'].map((s) => colour(page, `tbody .pill.state-${s}`)),
    );
    expect(new Set(pills).size).toBe(4);

    // The value in the unit of its condition; since when for active rules only.
    expect(await cell(page, 'http-0004-p95', 'last-value')).toBe('71.2 ms');
    expect(await cell(page, lossRule.rule, 'last-value')).toBe('1.00%');
    expect(await cell(page, 'http-0008-cert', 'last-value')).toBe('61.4 days');
    expect(await cell(page, 'icmp-0003-failing', 'since')).toBe('12m ago');
    expect(await cell(page, 'http-0000-p95', 'since')).toBe('–');
    const row = await page.textContent('tr[data-rule="http-0004-p95"]');
    expect(row).toContain('p95 latency > 0.05 s');
    expect(row).toContain('2 of 3 datapoints · for 2m');
    expect(row).toContain('severity=ticket');

    // The header counts what fires, and links here.
    expect(await page.textContent('[data-testid="firing-badge"]')).toBe('2 firing');
    expect(await page.getAttribute('[data-testid="nav-alerts"]', 'href')).toBe('#/alerts');
    // History, newest first.
    expect(
      await page.$$eval('[data-testid="alert-history"] tbody tr', (rows) =>
        rows.map((r) => `${r.getAttribute('data-history-rule')}:${r.getAttribute('data-to')}`),
      ),
    ).toEqual([
      'http-0004-p95:pending',
      expect.stringMatching(/^p99-.*:resolved$/),
      'icmp-0003-failing:firing',
      'icmp-0003-failing:pending',
      expect.stringMatching(/^p99-.*:firing$/),
      `${lossRule.rule}:firing`,
      `${lossRule.rule}:pending`,
    ]);
    await screenshot(page, 'alerts-light.png');

    // A subject links to its detail page.
    await page.click(`tr[data-rule="${lossRule.rule}"] a`);
    await page.waitForSelector('[data-testid="detail-title"]');
    expect(await page.textContent('[data-testid="detail-title"]')).toContain(
      `${lossFlow.canary} → ${lossFlow.coalminer}`,
    );
    await page.goBack();
    await page.click('tr[data-rule="icmp-0003-failing"] a');
    await expect.poll(() => page.textContent('[data-testid="detail-title"]')).toContain('icmp-0003');
    expect(page.problems).toEqual([]);
  });

  it('applies a new `alert` event at once: the rule, the badge and the history', async () => {
    const d = await double();
    const page = await open(d);
    await page.waitForSelector('[data-testid="connection"].live');
    const fetches = () => d.requests.filter((r) => r.path === '/api/v1/alerts').length;
    const before = fetches();

    d.alerts!.transition('http-0004-p95', 'firing', 0.0834);
    await expect.poll(() => stateOf(page, 'http-0004-p95')).toBe('firing');
    expect(await cell(page, 'http-0004-p95', 'last-value')).toBe('83.4 ms');
    expect(await page.textContent('[data-testid="firing-badge"]')).toBe('3 firing');
    expect(await page.getAttribute('[data-testid="alert-history"] tbody tr', 'data-to')).toBe('firing');
    // The pending period carries on into firing: still since 40 s before the double started.
    expect(await cell(page, 'http-0004-p95', 'since')).toMatch(/^\d+s ago$/);

    d.alerts!.transition('icmp-0003-failing', 'resolved', 0);
    await expect.poll(() => stateOf(page, 'icmp-0003-failing')).toBe('resolved');
    expect(await cell(page, 'icmp-0003-failing', 'since')).toBe('–');
    expect(await page.textContent('[data-testid="firing-badge"]')).toBe('2 firing');
    const top = await page.$$eval('[data-testid="alert-history"] tbody tr', (rows) =>
      rows.slice(0, 2).map((r) => r.textContent),
    );
    expect(top[0]).toContain('icmp-0003-failing');
    expect(top[0]).toMatch(/firing\s*→\s*resolved/);
    expect(top[1]).toMatch(/pending\s*→\s*firing/);
    // From the stream, not from asking again.
    expect(fetches()).toBe(before);

    // The badge follows on every page.
    await page.click('nav a:text-is("Overview")');
    d.alerts!.transition('http-0000-p95', 'pending', 0.3);
    d.alerts!.transition('http-0000-p95', 'firing', 0.31);
    await expect.poll(() => page.textContent('[data-testid="firing-badge"]')).toBe('3 firing');
    expect(page.problems).toEqual([]);
  });

  it('creates silences from a rule and from scratch, shows what they mute, and expires them', async () => {
    const d = await double();
    const page = await open(d, TOKEN, /status of 400/);
    const lossRule = d.alerts!.rules().find((r) => r.rule.startsWith('loss-'))!.rule;
    const p99Rule = d.alerts!.rules().find((r) => r.rule.startsWith('p99-'))!.rule;

    // From a rule: its alertname is filled in, the comment is next.
    await page.click('button[aria-label="Silence icmp-0003-failing"]');
    await page.waitForSelector('[data-testid="silence-form"]');
    expect(await page.inputValue('[aria-label="Label name 1"]')).toBe('alertname');
    expect(await page.inputValue('[aria-label="Value 1"]')).toBe('icmp-0003-failing');
    expect(await page.textContent('[data-testid="silence-preview"]')).toBe(
      'Mutes the notifications of icmp-0003-failing.',
    );
    await page.selectOption('[data-testid="silence-duration"]', '14400');
    await page.keyboard.type('replacing the switch'); // the comment has the focus
    await screenshot(page, 'alerts-silence-form-light.png');
    const t0 = Date.now();
    await page.click('[data-testid="silence-create"]');
    await page.waitForSelector('tr[data-silence="silence-1"][data-active="true"]');
    expect(await page.textContent('[data-testid="silence-notice"]')).toBe('Silence silence-1 created.');
    expect(await page.$('[data-testid="silence-form"]')).toBeNull();
    expect(await cell(page, 'icmp-0003-failing', 'silenced-by')).toBe('silence-1');
    // Silenced, still firing: a silence mutes notifications, not evaluation.
    expect(await stateOf(page, 'icmp-0003-failing')).toBe('firing');
    const [created] = d.alerts!.silences();
    expect(created).toMatchObject({
      id: 'silence-1',
      matchers: { alertname: 'icmp-0003-failing' },
      comment: 'replacing the switch',
      createdBy: 'e2e-writer', // the token's name, from whoami
      active: true,
    });
    expect(created!.endsAt - created!.startsAt).toBeGreaterThanOrEqual(14_400_000 - 1000);
    expect(created!.startsAt).toBeGreaterThanOrEqual(t0 - 1000);
    const post = d.requests.find((r) => r.method === 'POST' && r.path === '/api/v1/silences');
    expect(post?.auth).toBe(`Bearer ${TOKEN}`);

    // A bad label name: the API's reason, shown in the form, and nothing created.
    await page.click('[data-testid="new-silence"]');
    await page.fill('[aria-label="Label name 1"]', '1team');
    await page.fill('[aria-label="Value 1"]', 'messaging');
    await page.click('[data-testid="silence-create"]');
    await page.waitForSelector('[data-testid="silence-error"]');
    expect(await page.textContent('[data-testid="silence-error"]')).toContain(
      '"matchers.1team" is not a label name',
    );
    expect(d.alerts!.silences()).toHaveLength(1);

    // By a rule label: every rule with it is muted.
    await page.fill('[aria-label="Label name 1"]', 'team');
    expect(await page.textContent('[data-testid="silence-preview"]')).toBe(
      `Mutes the notifications of ${lossRule}, ${p99Rule}.`,
    );
    await page.click('[data-testid="silence-create"]');
    await page.waitForSelector('tr[data-silence="silence-2"]');
    expect(await cell(page, lossRule, 'silenced-by')).toBe('silence-2');
    expect(await cell(page, p99Rule, 'silenced-by')).toBe('silence-2');
    expect(await cell(page, 'http-0004-p95', 'silenced-by')).toBe('–');
    await screenshot(page, 'alerts-silenced-light.png');

    // Expiring asks first: keeping it sends nothing.
    await page.click('button[aria-label="Expire silence silence-1"]');
    await page.click('button[aria-label="Keep silence silence-1"]');
    expect(d.requests.some((r) => r.method === 'DELETE')).toBe(false);
    expect(await page.$('button[aria-label="Confirm: expire silence silence-1"]')).toBeNull();
    // Expire the first: listed as expired, no longer muting.
    await page.click('button[aria-label="Expire silence silence-1"]');
    await screenshot(page, 'alerts-expire-confirm-light.png');
    await page.click('button[aria-label="Confirm: expire silence silence-1"]');
    await page.waitForSelector('tr[data-silence="silence-1"][data-active="false"]');
    expect(await page.textContent('tr[data-silence="silence-1"] .pill')).toBe('expired');
    expect(await page.$('button[aria-label="Expire silence silence-1"]')).toBeNull();
    expect(await cell(page, 'icmp-0003-failing', 'silenced-by')).toBe('–');
    expect(d.alerts!.silences().find((s) => s.id === 'silence-1')!.active).toBe(false);
    expect(d.requests.some((r) => r.method === 'DELETE' && r.path === '/api/v1/silences/silence-1')).toBe(
      true,
    );
    expect(page.problems).toEqual([]);
  });

  it('hides every write button from a read-only token', async () => {
    const d = await double();
    d.alerts!.addSilence({
      matchers: { severity: 'page' },
      endsAt: Date.now() + 3_600_000,
      comment: 'game day',
      createdBy: 'ops',
    });
    const page = await open(d, READ_TOKEN);
    await page.waitForSelector('tr[data-silence="silence-1"]');
    await expect.poll(() => d.requests.some((r) => r.path === '/api/v1/whoami')).toBe(true);
    // The silence mutes both severity=page rules, and the reader sees that...
    expect(await cell(page, 'icmp-0003-failing', 'silenced-by')).toBe('silence-1');
    expect(await cell(page, 'http-0000-p95', 'silenced-by')).toBe('silence-1');
    // ...but is offered nothing it may not do.
    expect(await page.$$('button[aria-label^="Silence "]')).toHaveLength(0);
    expect(await page.$('[data-testid="new-silence"]')).toBeNull();
    expect(await page.$$('button[aria-label^="Expire silence"]')).toHaveLength(0);
    // The same page with the write token offers them.
    const writer = await open(d, TOKEN);
    await writer.waitForSelector('[data-testid="new-silence"]');
    expect(await writer.$$('button[aria-label^="Silence "]')).toHaveLength(6);
    expect(await writer.$$('button[aria-label^="Expire silence"]')).toHaveLength(1);
    expect(page.problems).toEqual([]);
  });

  it('has clear state colours in the dark theme too', async () => {
    const d = await double();
    const page = await open(d);
    const light = await Promise.all(
      ['firing', 'pending', 'resolved', 'ok'].map((s) => colour(page, `tbody .pill.state-${s}`)),
    );
    await page.click('[data-testid="theme-toggle"]');
    expect(await page.getAttribute('html', 'data-theme')).toBe('dark');
    const dark = await Promise.all(
      ['firing', 'pending', 'resolved', 'ok'].map((s) => colour(page, `tbody .pill.state-${s}`)),
    );
    expect(new Set(dark).size).toBe(4);
    for (const [i, c] of dark.entries()) expect(c, `state ${i}`).not.toBe(light[i]);
    d.alerts!.addSilence({
      matchers: { team: 'web' },
      endsAt: Date.now() + 7_200_000,
      comment: '',
      createdBy: 'ops',
    });
    d.alerts!.transition('http-0000-p95', 'pending', 0.27);
    await expect.poll(() => stateOf(page, 'http-0000-p95')).toBe('pending');
    await page.reload();
    await page.waitForSelector('tr[data-silence="silence-1"]');
    await screenshot(page, 'alerts-dark.png');
    expect(page.problems).toEqual([]);
  });

  it('says how to turn alerting on when the agent has none', async () => {
    const d = await double({ alerts: false });
    const page = (await browser!.context.newPage()) as Page;
    pages.push(page);
    await page.goto(`${d.url}/?token=${TOKEN}#/alerts`);
    await page.waitForSelector('[data-testid="alerting-off"]');
    expect(await page.textContent('[data-testid="alerting-off"]')).toContain('alerting:');
    expect(await page.$('[data-testid="firing-badge"]')).toBeNull();
  });
});
