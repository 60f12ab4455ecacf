/**
 * End to end: a Gated DeltaNet made by the CLI's `init`, analysed in web mode, and its delta rule shown as the
 * test-time learner it is: the inner-loop views (‖Sk − v‖² before and after each token's update, per block of 16
 * tokens) and the hidden-state views (the state S: its norm, update size, PCA trajectory and spectra).
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eBrowser, launchBrowser } from '../helpers/browser.js';
import { sampleText, tempDir } from '../helpers/tiny-models.js';
import { repoRoot, startWeb, stopWeb, type WebMode } from '../helpers/web-mode.js';

const browserChoice = e2eBrowser('test/e2e/delta.test.ts');

const work = tempDir('ttt-e2e-delta-');
const model = join(work.dir, 'gated-deltanet-tiny');
let web: WebMode | null = null;
let browser: Browser;
let page: Page;

const region = (name: string) => page.getByRole('region', { name, exact: true });
const traces = (chart: Locator) => chart.locator('.scatterlayer .trace');
const legend = (chart: Locator) => chart.locator('.legend .traces').allTextContents();

beforeAll(async () => {
  if (browserChoice.skip) return;
  await promisify(execFile)(process.execPath, [join(repoRoot, 'bin', 'ttt-workbench.js'), 'init', '--arch', 'gated-deltanet', '--preset', 'tiny', '--out', model]);
  const book = join(work.dir, 'sample.txt');
  writeFileSync(book, sampleText.repeat(4));
  web = await startWeb(join(work.dir, 'data'), [model], book);
  browser = await launchBrowser(browserChoice);
  page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
});

afterAll(async () => {
  await browser?.close();
  await stopWeb(web);
  work.cleanup();
});

describe.skipIf(browserChoice.skip)('a Gated DeltaNet in the workbench', () => {
  it('analyses a book and shows its inner loop and its state S in the views', async () => {
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(web!.url);
    await page.getByRole('navigation').getByRole('button', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Run analysis' }).click();
    // the first run of an empty app opens itself; its entry in the list is one click away
    await page.getByTestId('run-view').getByRole('button', { name: 'All runs' }).click();
    const item = page.getByRole('listitem', { name: 'sample.txt · gated-deltanet-tiny' });
    // a run missing from the list fails with what the list holds instead
    const statusOrList = async () => ((await item.count()) > 0 ? item.getAttribute('data-status') : `not listed; the list: ${JSON.stringify(await page.getByRole('listitem').allTextContents())}`);
    await expect.poll(statusOrList, { timeout: 90_000, interval: 250 }).toBe('finished');
    await item.getByRole('button', { name: /^Open / }).click();

    // Inner loop: the delta rule's loss under S₀ (= 0), before and after each token's step, per layer
    await page.getByRole('tab', { name: 'Inner loop' }).click();
    const losses = region('Inner-loop loss along the document');
    await expect.poll(() => traces(losses).count(), { timeout: 30_000 }).toBe(3);
    await expect.poll(() => legend(losses)).toEqual(['ttt_loss_init (W₀)', 'ttt_loss_before', 'ttt_loss_after']);
    await expect.poll(() => traces(region('Inner-loop reduction')).count()).toBe(2);

    // Hidden state: S's distance from S₀ and update size, cosine, PCA trajectory of the snapshots, spectra
    await page.getByRole('tab', { name: 'Hidden state' }).click();
    await expect.poll(() => traces(region('Weight change along the document')).count(), { timeout: 30_000 }).toBe(2);
    await expect.poll(() => traces(region('Cosine similarity to the initial weights')).count()).toBeGreaterThan(0);
    await expect.poll(() => region('Weight trajectory (PCA of snapshots)').locator('.scatterlayer .point').count()).toBeGreaterThan(3);
    await expect.poll(() => traces(region('Singular-value spectra')).count()).toBe(3);
    expect(errors).toEqual([]);
  });
});
