/**
 * Evaluate corpus, end to end (web mode, Debian's Chromium): a small corpus folder (8 short documents and 2 bad
 * ones the engine skips) through two tiny models; the corpus view shows each model's NLL-by-position curve with
 * its 95% band, the per-document scatter of model A against model B and the table, the workers' progress, and
 * exports the curve as CSV and the whole run as an HTML report, whose content is checked.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eBrowser, launchBrowser } from '../helpers/browser.js';
import { writeTestCorpus } from '../helpers/corpus.js';
import { sampleText, tempDir, writeTinyModel } from '../helpers/tiny-models.js';
import { startWeb, stopWeb, type WebMode } from '../helpers/web-mode.js';

const browserChoice = e2eBrowser('test/e2e/corpus.test.ts');
const work = tempDir('ttt-e2e-corpus-');
let server: WebMode | null = null;
let browser: Browser;
let page: Page;
let corpus: ReturnType<typeof writeTestCorpus>;

beforeAll(async () => {
  if (browserChoice.skip) return;
  const models = [writeTinyModel(work.dir, 'ttt-linear', 'ttt-linear-tiny'), writeTinyModel(work.dir, 'mamba', 'mamba-tiny')];
  corpus = writeTestCorpus(work.dir, 8);
  const book = join(work.dir, 'book.txt');
  writeFileSync(book, sampleText);
  server = await startWeb(join(work.dir, 'data'), models, book);
  browser = await launchBrowser(browserChoice);
  page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
});

afterAll(async () => {
  await browser?.close();
  await stopWeb(server);
  work.cleanup();
});

const region = (name: string) => page.getByRole('region', { name, exact: true });
/** The traces a chart draws, as Plotly holds them. */
const drawn = (chart: Locator) => chart.locator('.chart-plot').evaluate((el) =>
  (el as unknown as { data: { name: string; fill?: string; mode: string; x: ArrayLike<number>; y: ArrayLike<number> }[] }).data
    .map((t) => ({ name: t.name, fill: t.fill ?? 'none', mode: t.mode, x: Array.from(t.x), y: Array.from(t.y) })));
const points = async (chart: Locator) => (await drawn(chart)).find((t) => t.mode === 'markers');

async function download(button: Locator): Promise<string> {
  const [file] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), button.click()]);
  return readFileSync((await file.path())!, 'utf8');
}

describe.skipIf(browserChoice.skip)('Evaluate corpus, end to end', () => {
  it('evaluates a corpus with two models, shows both bands and the scatter, and exports the report', async () => {
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(server!.url);
    await page.getByRole('navigation').getByRole('button', { name: 'Corpus' }).click();
    const form = page.getByTestId('corpus-view');
    // the demo models are selected, as for Run analysis
    await expect.poll(() => form.getByRole('checkbox').evaluateAll((boxes) => boxes.map((b) => (b as HTMLInputElement).checked))).toEqual([true, true]);
    await form.getByRole('textbox', { name: 'Corpus path' }).fill(corpus.folder);
    await form.getByRole('button', { name: 'Evaluate corpus' }).click();

    // the corpus view opens, with progress per worker, and ends with every document of both models
    const view = page.getByTestId('corpus-run-view');
    await expect.poll(() => view.locator('.page-header .status').textContent(), { timeout: 60_000, interval: 200 }).toBe('finished');
    await expect.poll(() => view.getByTestId('corpus-progress-text').textContent()).toMatch(/^16 of 16 documents done/);
    expect(await view.getByRole('list', { name: 'Workers' }).getByRole('listitem').count()).toBeGreaterThanOrEqual(1);
    expect(await view.getByRole('heading', { level: 1 }).textContent()).toBe('books');
    expect(await view.locator('.page-subtitle').textContent()).toMatch(/8 documents \(folder\), 2 skipped/);
    const problems = view.getByTestId('corpus-problems');
    await problems.getByText('2 skipped, 0 failed').click();
    expect(await problems.getByRole('listitem').allTextContents()).toEqual([expect.stringContaining('book-05a.txt'), expect.stringContaining('book-09a.txt')]);

    // two bands (a filled 95% interval per model) around two mean curves on a log position axis
    const curve = region('NLL by token position');
    await expect.poll(async () => (await drawn(curve)).filter((t) => t.fill === 'tonexty').map((t) => t.name), { timeout: 10_000 })
      .toEqual(['ttt-linear-tiny 95% interval', 'mamba-tiny 95% interval']);
    const traces = await drawn(curve);
    const means = traces.filter((t) => t.mode === 'lines+markers');
    expect(means.map((t) => t.name)).toEqual(['ttt-linear-tiny', 'mamba-tiny']);
    for (const [i, mean] of means.entries()) {
      const [high, low] = [traces[3 * i], traces[3 * i + 1]];
      // where a bin has an interval, it holds the mean
      for (const [j, y] of mean.y.entries()) if (Number.isFinite(high.y[j])) expect(low.y[j] <= y && y <= high.y[j]).toBe(true);
    }
    expect(await curve.locator('.chart-plot').evaluate((el) => (el as unknown as { layout: { xaxis: { type: string } } }).layout.xaxis.type)).toBe('log');

    // the scatter: one point per document, A against B; B set to A puts every point on the diagonal
    const scatter = region('Bits per byte per document');
    await expect.poll(async () => (await points(scatter))?.x.length ?? 0).toBe(8);
    const ab = (await points(scatter))!;
    expect(ab.x).not.toEqual(ab.y);
    expect(await view.getByRole('table', { name: 'Documents' }).locator('tbody tr').count()).toBe(8);
    const modelB = scatter.getByRole('combobox', { name: 'Model B' });
    const first = (await modelB.locator('option').allTextContents()).find((o) => o.startsWith('ttt-linear-tiny'))!;
    await modelB.selectOption({ label: first });
    await expect.poll(async () => (await points(scatter))?.y).toEqual(ab.x);

    // exports: the curve's CSV and the whole run as one HTML report that opens offline
    const csv = (await download(curve.getByRole('button', { name: 'Export CSV' }))).trim().split('\n');
    expect(csv[0]).toBe('model,position,mean_nll,points_from_rows');
    expect(new Set(csv.slice(1).map((line) => line.split(',')[0]))).toEqual(new Set(['ttt-linear-tiny', 'ttt-linear-tiny 95% high', 'ttt-linear-tiny 95% low', 'mamba-tiny', 'mamba-tiny 95% high', 'mamba-tiny 95% low']));
    const html = await download(view.getByRole('button', { name: 'Export report' }));
    expect(html.startsWith('<!doctype html>')).toBe(true);
    for (const text of ['ttt-linear-tiny', 'mamba-tiny', 'NLL by token position over the corpus', 'Bits per byte per document', 'Skipped documents', 'book-05a.txt', corpus.names[7]]) {
      expect(html).toContain(text);
    }
    expect(html).not.toMatch(/<script|<link|\bsrc="|href="http/);
    const offline = await browser.newContext({ offline: true });
    const reader = await offline.newPage();
    await reader.setContent(html);
    expect(await reader.locator('figure svg.main-svg').count()).toBe(2);
    // the curve figure's two bands: the filled areas Plotly drew (its other traces have an empty fill path)
    const bands = await reader.locator('figure').first().locator('.scatterlayer path.js-fill').evaluateAll((paths) => paths.filter((p) => (p.getAttribute('d') ?? '') !== '').length);
    expect(bands).toBe(2);
    expect(await reader.locator('figure').nth(1).locator('.scatterlayer .point').count()).toBe(8);
    expect(await reader.getByRole('table').nth(1).locator('tbody tr').count()).toBe(8);
    await offline.close();
    expect(errors).toEqual([]);
  });
});
