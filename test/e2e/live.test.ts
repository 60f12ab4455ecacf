/**
 * A run seen while it streams, end to end (web mode, Debian's Chromium): the first run of an empty app opens itself;
 * its perplexity, inner-loop and comparison curves grow as the engine pushes updates; a chart zooms while the run
 * goes on; and the final curves and figures equal those of the same run read back from disk after the engine
 * restarts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eBrowser, launchBrowser } from '../helpers/browser.js';
import { tempDir, writeTinyModel } from '../helpers/tiny-models.js';
import { repoRoot, startWeb, stopWeb, type WebMode } from '../helpers/web-mode.js';

const browserChoice = e2eBrowser('test/e2e/live.test.ts');
const work = tempDir('ttt-e2e-live-');
const dataDir = join(work.dir, 'data');
let server: WebMode | null = null;
let browser: Browser;
let page: Page;
let models: string[];
const book = join(work.dir, 'kjv-start.txt');

beforeAll(async () => {
  if (browserChoice.skip) return;
  models = [writeTinyModel(work.dir, 'ttt-linear', 'ttt-linear-tiny'), writeTinyModel(work.dir, 'mamba', 'mamba-tiny')];
  // long enough that the run streams for a while on two cores
  writeFileSync(book, readFileSync(join(repoRoot, 'assets', 'corpus', 'kjv.txt')).subarray(0, 1_000_000).toString('utf8').replace(/\uFFFD+$/, ''));
  server = await startWeb(dataDir, models, book);
  browser = await launchBrowser(browserChoice);
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
});

afterAll(async () => {
  await browser?.close();
  await stopWeb(server);
  work.cleanup();
});

const region = (name: string) => page.getByRole('region', { name, exact: true });
const traces = (chart: Locator) => chart.locator('.scatterlayer .trace');
/** How far along the book a chart draws: the largest x of its traces (the status line rounds large counts). */
const reach = (chart: Locator) => chart.locator('.chart-plot').evaluate((el) => {
  const data = (el as unknown as { data?: { x: ArrayLike<number> }[] }).data ?? [];
  return Math.max(0, ...data.map((t) => (t.x.length ? t.x[t.x.length - 1] : 0)));
});
const status = () => page.getByTestId('run-view').locator('.page-header .status').first().textContent();
/** The y values a chart draws, per trace, as Plotly holds them. */
const drawn = (chart: Locator) => chart.locator('.chart-plot').evaluate((el) => (el as unknown as { data: { name: string; y: ArrayLike<number> }[] }).data.map((t) => [t.name, Array.from(t.y)]));
const figures = () => page.getByRole('table', { name: 'Models in this run' }).locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.textContent));

describe.skipIf(browserChoice.skip)('a live run, end to end', () => {
  it('opens the first run at once, grows its curves as it streams, zooms meanwhile, and ends as it reads back from disk', async () => {
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(server!.url);
    await page.getByRole('navigation').getByRole('button', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Run analysis' }).click();

    // the first run of an empty app opens itself, and its curves appear while it runs
    const perplexity = region('Perplexity along the document');
    await expect.poll(() => traces(perplexity).count(), { timeout: 60_000, interval: 100 }).toBe(2);
    expect(await status()).toBe('running');
    const early = await reach(perplexity);
    await expect.poll(() => reach(perplexity), { timeout: 30_000, interval: 200 }).toBeGreaterThan(early);
    expect(await status()).toBe('running');

    // the Comparison tab follows the run from its pushed aggregates (bits per byte by byte offset)
    await page.getByRole('tab', { name: 'Comparison' }).click();
    const comparison = region('Bits per byte along the book');
    await expect.poll(() => traces(comparison).count(), { timeout: 30_000 }).toBe(2);
    const comparedReach = await reach(comparison);
    await expect.poll(() => reach(comparison), { timeout: 30_000, interval: 200 }).toBeGreaterThan(comparedReach);
    expect(await page.getByRole('table', { name: 'Bits per byte by position range' }).locator('tbody tr').count()).toBe(2);

    // the inner loop grows too
    await page.getByRole('tab', { name: 'Inner loop' }).click();
    const inner = region('Inner-loop loss along the document');
    await expect.poll(() => traces(inner).count(), { timeout: 30_000 }).toBe(3);
    const innerReach = await reach(inner);
    await expect.poll(() => reach(inner), { timeout: 30_000, interval: 200 }).toBeGreaterThan(innerReach);

    // back on the chart: a zoom while the run goes on is refined from the stored rows, and resetting the axes
    // returns to the whole, live curve
    await page.getByRole('tab', { name: 'Perplexity' }).click();
    await expect.poll(() => traces(perplexity).count()).toBe(2);
    const box = (await perplexity.locator('.nsewdrag').first().boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.8, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await expect.poll(() => perplexity.getAttribute('data-range'), { timeout: 15_000 }).toMatch(/^\d+-\d+$/);
    expect(await perplexity.getByTestId('chart-status').textContent()).toMatch(/zoomed to/);
    await page.waitForTimeout(400); // past Plotly's double-click window after the drag
    await perplexity.locator('.modebar-btn[data-title="Reset axes"]').click({ force: true });
    await expect.poll(() => perplexity.getAttribute('data-range')).toBe('all');

    // the end: figures in the table, and the curves as the live run drew them
    await expect.poll(status, { timeout: 300_000, interval: 500 }).toBe('finished');
    await expect.poll(async () => (await figures()).every((row) => /finished/.test(row ?? '')), { timeout: 10_000 }).toBe(true);
    await page.waitForTimeout(1000); // the last pushed update and the finished run's reload settle
    const liveCurves = await drawn(perplexity);
    const liveFigures = await figures();
    expect(liveCurves.map(([name]) => name)).toEqual(['ttt-linear-tiny', 'mamba-tiny']);

    // the engine restarts; the run, read back from its files, is the same run
    await stopWeb(server);
    server = await startWeb(dataDir, models, book);
    await page.goto(server.url);
    await page.getByRole('navigation').getByRole('button', { name: 'Runs' }).click();
    await page.getByRole('listitem', { name: /^kjv-start\.txt/ }).getByRole('button', { name: /^Open / }).click();
    await expect.poll(() => traces(perplexity).count(), { timeout: 30_000 }).toBe(2);
    await page.waitForTimeout(500);
    expect(await drawn(perplexity)).toEqual(liveCurves);
    expect(await figures()).toEqual(liveFigures);
    expect(errors).toEqual([]);
  });
});
