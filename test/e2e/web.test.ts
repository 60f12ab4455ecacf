/**
 * End to end, as a person uses it: the real engine in web mode (`scripts/web.ts`), Chromium or Chrome
 * (test/helpers/browser.ts finds one) driven by playwright-core, elements found by role and accessible name. Tiny random models and a few KB of text keep
 * it short on two cores. Screenshots go to out/e2e/; with UPDATE_SCREENSHOTS=1 also to docs/screenshots/.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eBrowser, launchBrowser } from '../helpers/browser.js';
import { startWeb as startWebMode, stopWeb as stopWebMode, type WebMode } from '../helpers/web-mode.js';
import { sampleText, tempDir, writeTinyModel } from '../helpers/tiny-models.js';

const root = join(import.meta.dirname, '..', '..');
const browserChoice = e2eBrowser('test/e2e/web.test.ts');
const shotsDir = join(root, 'out', 'e2e');
const docsShots = process.env.UPDATE_SCREENSHOTS === '1' ? join(root, 'docs', 'screenshots') : null;
const kjv = join(root, 'assets', 'corpus', 'kjv.txt');

const work = tempDir('ttt-e2e-');
const dataDir = join(work.dir, 'data');
let server: WebMode | null = null;
let browser: Browser;
let page: Page;
let modelA: string, modelB: string, book: string;
/** Added through the UI in the analytical-views test; made by the CLI's `init`, as a person would make them. */
const modelC = join(work.dir, 'ttt-mlp-tiny');
const modelD = join(work.dir, 'transformer-tiny');
let initModels: Promise<unknown>;

/** Web mode on the test's data folder with the two shipped tiny models and the sample book. */
const startWeb = () => startWebMode(dataDir, [modelA, modelB], join(work.dir, 'sample.txt'));

async function stopWeb(): Promise<void> {
  const running = server;
  server = null;
  await stopWebMode(running);
}

async function screenshot(name: string): Promise<void> {
  const file = join(shotsDir, `${name}.png`);
  await page.screenshot({ path: file });
  // the run views' pictures in docs/ are the demo models' (scripts/readme-pictures.ts), not these tiny ones
  if (docsShots && ['library', 'models', 'runs'].includes(name)) copyFileSync(file, join(docsShots, `${name}.png`));
}

beforeAll(async () => {
  if (browserChoice.skip) return;
  mkdirSync(shotsDir, { recursive: true });
  modelA = writeTinyModel(work.dir, 'ttt-linear', 'ttt-linear-tiny');
  modelB = writeTinyModel(work.dir, 'mamba', 'mamba-tiny');
  writeFileSync(join(work.dir, 'sample.txt'), sampleText.repeat(4));
  // ~16 KB: long enough that a run is still going when the test cancels it, short enough for two slow cores
  book = join(work.dir, 'genesis.txt');
  writeFileSync(book, existsSync(kjv) ? readFileSync(kjv).subarray(0, 16_000).toString('utf8').replace(/\uFFFD+$/, '') : sampleText.repeat(28));
  // the CLI loads TF.js to write a checkpoint: start it now, alongside the server and the browser
  const init = (arch: string, out: string) => promisify(execFile)(process.execPath, [join(root, 'bin', 'ttt-workbench.js'), 'init', '--arch', arch, '--preset', 'tiny', '--out', out]);
  initModels = Promise.all([init('ttt-mlp', modelC), init('transformer', modelD)]);
  initModels.catch(() => undefined); // awaited (and reported) by the test that needs the models
  server = await startWeb();
  browser = await launchBrowser(browserChoice);
  page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
});

afterAll(async () => {
  await browser?.close();
  await stopWeb();
  work.cleanup();
});

const runItems = () => page.getByRole('listitem', { name: 'genesis.txt · ttt-linear-tiny, mamba-tiny' });
const progressOf = async (item: ReturnType<typeof runItems>) => Number(await item.getByRole('progressbar').getAttribute('aria-valuenow'));
const sampleTokens = Buffer.byteLength(sampleText.repeat(4));
const region = (name: string) => page.getByRole('region', { name, exact: true });
const traces = (chart: Locator) => chart.locator('.scatterlayer .trace');
const legend = (chart: Locator) => chart.locator('.legend .traces').allTextContents();
const statusRows = async (chart: Locator) => Number(/from ([\d,]+) rows/.exec((await chart.getByTestId('chart-status').textContent()) ?? '')![1].replace(/,/g, ''));

/** A zoom as a person makes one: a drag across the plot, from one fraction of its width to another. */
async function zoom(chart: Locator, from: number, to: number): Promise<void> {
  const box = (await chart.locator('.nsewdrag').first().boundingBox())!;
  await page.mouse.move(box.x + box.width * from, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * to, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  // Plotly counts a click within 300 ms of the drag's mousedown as the second click of a double-click, which
  // zooms back out; a person's next click comes later than that, so the test's does too
  await page.waitForTimeout(400);
}

/** Picks the option whose text starts with `text` in the select labelled `label`. */
async function choose(label: string, text: string): Promise<void> {
  const select = page.getByLabel(label, { exact: true });
  const option = (await select.locator('option').allTextContents()).find((o) => o.startsWith(text));
  await select.selectOption({ label: option! });
}

/** The bytes a chart's export button saves. */
async function download(chart: Locator, button: string): Promise<Buffer> {
  const [file] = await Promise.all([page.waitForEvent('download'), chart.getByRole('button', { name: button }).click()]);
  return readFileSync((await file.path())!);
}

describe.skipIf(browserChoice.skip)('web mode, end to end', () => {
  it('opens a book, runs two models, cancels one run, finishes another, charts and exports it', async () => {
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(server!.url);

    // Library: the sample book is preloaded; open another through the UI
    await page.getByTestId('library-view').getByRole('listitem', { name: 'sample.txt' }).waitFor();
    await page.getByRole('button', { name: 'Open book' }).click();
    await page.getByRole('dialog', { name: 'Open book' }).getByRole('textbox').fill(book);
    await page.getByRole('dialog', { name: 'Open book' }).getByRole('button', { name: 'Open' }).click();
    const card = page.getByRole('listitem', { name: 'genesis.txt' });
    await card.waitFor();
    expect(await card.textContent()).toMatch(/1[56](\.\d)?K tokens/);
    await expect.poll(() => card.getByText('Open', { exact: true }).count()).toBe(1);
    await screenshot('library');

    // Models: both shipped models are selected by default
    await page.getByRole('navigation').getByRole('button', { name: 'Models' }).click();
    await page.getByTestId('models-view').waitFor();
    expect(await page.getByRole('checkbox', { name: 'Select ttt-linear-tiny' }).isChecked()).toBe(true);
    expect(await page.getByRole('checkbox', { name: 'Select mamba-tiny' }).isChecked()).toBe(true);
    // and where models run: every backend, the engine's own first among those it can start
    const backends = page.getByRole('table', { name: 'Backends' });
    await expect.poll(() => backends.locator('tbody tr').count()).toBe(4);
    expect(await page.getByTestId('engine-backend').textContent()).toMatch(/^The engine runs models on wasm: WebAssembly/);
    await screenshot('models');

    // Runs: start one, watch it progress, cancel it
    await page.getByRole('navigation').getByRole('button', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Run analysis' }).click();
    // the first run of an empty app opens itself; the list is one click away
    await page.getByTestId('run-view').getByRole('button', { name: 'All runs' }).click();
    const first = runItems().first();
    await expect.poll(() => progressOf(first), { timeout: 60_000, interval: 50 }).toBeGreaterThan(0);
    await first.getByRole('button', { name: 'Cancel run' }).click();
    await expect.poll(() => first.getAttribute('data-status'), { timeout: 30_000 }).toBe('cancelled');

    // start another and let it finish
    await page.getByRole('button', { name: 'Run analysis' }).click();
    await expect.poll(() => runItems().count()).toBe(2);
    const second = runItems().first();
    await expect.poll(() => progressOf(second), { timeout: 60_000, interval: 100 }).toBeGreaterThan(0);
    // once a model starts, the list says where it runs: the engine's backend, split across the two cores
    await expect.poll(() => second.getByTestId('run-placement').textContent(), { timeout: 30_000 }).toMatch(/^wasm · [12] stages?$/);
    await screenshot('runs');
    await expect.poll(() => second.getAttribute('data-status'), { timeout: 90_000, interval: 250 }).toBe('finished');
    expect(await runItems().nth(1).getAttribute('data-status')).toBe('cancelled');

    // Run view: the perplexity chart has one line per model
    await second.getByRole('button', { name: /^Open / }).click();
    const chart = page.getByRole('region', { name: 'Perplexity along the document' });
    await chart.waitFor();
    await expect.poll(() => chart.locator('.scatterlayer .trace').count(), { timeout: 30_000 }).toBe(2);
    expect(await chart.locator('.legend .traces').allTextContents()).toEqual(['ttt-linear-tiny', 'mamba-tiny']);
    await chart.getByRole('button', { name: 'Raw' }).click();
    await expect.poll(() => chart.getByRole('button', { name: 'Raw' }).getAttribute('aria-pressed')).toBe('true');
    await expect.poll(() => chart.locator('.scatterlayer .trace').count()).toBe(2);
    await chart.getByRole('button', { name: 'Smoothed' }).click();
    await expect.poll(() => chart.locator('.scatterlayer .trace path.js-line').count()).toBe(2);
    await page.waitForTimeout(300); // let the redraw settle before the picture
    await screenshot('run');

    // Exports: a real PNG, and the data as CSV
    const [png] = await Promise.all([page.waitForEvent('download'), chart.getByRole('button', { name: 'Export PNG' }).click()]);
    const pngBytes = readFileSync((await png.path())!);
    expect([...pngBytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(pngBytes.length).toBeGreaterThan(5000);
    const [csv] = await Promise.all([page.waitForEvent('download'), chart.getByRole('button', { name: 'Export CSV' }).click()]);
    const lines = readFileSync((await csv.path())!, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('model,position,perplexity,points_from_rows');
    expect(new Set(lines.slice(1).map((l) => l.split(',')[0]))).toEqual(new Set(['ttt-linear-tiny', 'mamba-tiny']));
    expect(errors).toEqual([]);
  });

  it('keeps finished runs across an engine restart', async () => {
    await stopWeb();
    server = await startWeb();
    await page.goto(server.url);
    await page.getByRole('navigation').getByRole('button', { name: 'Runs' }).click();
    await expect.poll(() => runItems().count(), { timeout: 30_000 }).toBe(2);
    expect(await runItems().first().getAttribute('data-status')).toBe('finished');
    expect(await runItems().nth(1).getAttribute('data-status')).toBe('cancelled');
  });
  it('analyses a book with every architecture, and shows, zooms, links and exports each analytical view', async () => {
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await initModels;
    await page.goto(server!.url);

    // Models: add TTT-MLP and the Transformer beside the shipped TTT-Linear and Mamba; added models are selected
    await page.getByRole('navigation').getByRole('button', { name: 'Models' }).click();
    for (const dir of [modelC, modelD]) {
      await page.getByRole('button', { name: 'Add model' }).click();
      await page.getByRole('dialog', { name: 'Add model' }).getByRole('textbox').fill(dir);
      await page.getByRole('dialog', { name: 'Add model' }).getByRole('button', { name: 'Add' }).click();
      await page.getByRole('checkbox', { name: `Select ${dir.split('/').pop()}` }).waitFor();
    }
    await page.getByRole('navigation').getByRole('button', { name: 'Library' }).click();
    // the shipped sample book is the open one after a reload; "Use" makes it so otherwise
    const sample = page.getByRole('listitem', { name: 'sample.txt' });
    await sample.waitFor();
    if (await sample.getByRole('button', { name: 'Use sample.txt' }).count()) await sample.getByRole('button', { name: 'Use sample.txt' }).click();
    await expect.poll(() => sample.getByText('Open', { exact: true }).count()).toBe(1);

    // a short book (~2.2K tokens), so the Transformer's growing attention stays quick on two cores
    await page.getByRole('navigation').getByRole('button', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Run analysis' }).click();
    const item = page.getByRole('listitem', { name: 'sample.txt · ttt-linear-tiny, mamba-tiny, ttt-mlp-tiny, transformer-tiny' });
    await expect.poll(() => item.getAttribute('data-status'), { timeout: 90_000, interval: 250 }).toBe('finished');
    await item.getByRole('button', { name: /^Open / }).click();

    // Perplexity: zoom refines the curves from the engine over the new range
    const perplexity = region('Perplexity along the document');
    await expect.poll(() => traces(perplexity).count(), { timeout: 30_000 }).toBe(4);
    const rowsBefore = await statusRows(perplexity);
    await zoom(perplexity, 0.55, 0.85);
    await expect.poll(() => perplexity.getAttribute('data-range')).toMatch(/^\d+-\d+$/);
    expect(await perplexity.getByTestId('chart-status').textContent()).toMatch(/zoomed to/);
    expect(await statusRows(perplexity)).toBeLessThan(rowsBefore);
    const zoomed = await perplexity.getAttribute('data-range');

    // a click on a point opens the text at that position, and the way back keeps the zoom
    const marker = (await traces(perplexity).first().locator('.points path').nth(3).boundingBox())!;
    await page.mouse.click(marker.x + marker.width / 2, marker.y + marker.height / 2);
    await expect.poll(() => page.getByRole('tab', { name: 'Tokens' }).getAttribute('aria-selected')).toBe('true');
    const heatmap = page.getByTestId('token-heatmap-view');
    await expect.poll(() => heatmap.getByTestId('token-focus').textContent()).toMatch(/^Position \d/);
    const focused = heatmap.locator('.token-focus');
    await focused.waitFor();
    await expect.poll(() => focused.evaluate((el) => {
      const r = el.getBoundingClientRect(), box = el.closest('[data-testid="token-scroller"]')!.getBoundingClientRect();
      return r.top >= box.top && r.bottom <= box.bottom;
    })).toBe(true);
    const position = Number(/^Position ([\d,]+)/.exec((await heatmap.getByTestId('token-focus').textContent())!)![1].replace(/,/g, ''));
    const [lo, hi] = zoomed!.split('-').map(Number);
    expect(position).toBeGreaterThanOrEqual(lo);
    expect(position).toBeLessThanOrEqual(hi);
    await heatmap.getByRole('button', { name: 'Back to Perplexity' }).click();
    await expect.poll(() => region('Perplexity along the document').getAttribute('data-range')).toBe(zoomed);

    // Inner loop (TTT models): losses and their reduction per layer, another model and layer, zoom, exports
    await page.getByRole('tab', { name: 'Inner loop' }).click();
    const losses = region('Inner-loop loss along the document');
    await expect.poll(() => traces(losses).count(), { timeout: 30_000 }).toBe(3);
    await expect.poll(() => traces(region('Inner-loop reduction')).count()).toBe(2);
    await choose('Model', 'ttt-mlp-tiny');
    await choose('Layer', '1');
    await expect.poll(() => losses.getAttribute('data-draws')).not.toBe(null);
    await expect.poll(() => legend(losses)).toEqual(['ttt_loss_init (W₀)', 'ttt_loss_before', 'ttt_loss_after']);
    await screenshot('inner-loop');
    await zoom(losses, 0.2, 0.7);
    await expect.poll(() => losses.getAttribute('data-range')).toMatch(/^\d+-\d+$/);
    const png = await download(losses, 'Export PNG');
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const svg = (await download(losses, 'Export SVG')).toString('utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('ttt_loss_after');
    const csv = (await download(losses, 'Export CSV')).toString('utf8').trim().split('\n');
    expect(csv[0]).toBe('loss,position,ttt_loss,points_from_rows');
    expect(new Set(csv.slice(1).map((l) => l.split(',')[0]))).toEqual(new Set(['ttt_loss_init (W₀)', 'ttt_loss_before', 'ttt_loss_after']));

    // Hidden state: TTT weights (distance, update, cosine, PCA trajectory, spectra); Mamba state; KV cache
    await page.getByRole('tab', { name: 'Hidden state' }).click();
    for (const name of ['ttt-mlp-tiny', 'ttt-linear-tiny']) {
      await choose('Model', name);
      await expect.poll(() => traces(region('Weight change along the document')).count(), { timeout: 30_000 }).toBe(name === 'ttt-mlp-tiny' ? 4 : 2);
      await expect.poll(() => traces(region('Cosine similarity to the initial weights')).count()).toBeGreaterThan(0);
      await expect.poll(() => region('Weight trajectory (PCA of snapshots)').locator('.scatterlayer .point').count()).toBeGreaterThan(3);
      await expect.poll(() => traces(region('Singular-value spectra')).count()).toBe(3);
    }
    const chip = page.getByRole('group', { name: 'Spectra at positions' }).locator('button[aria-pressed="false"]').first();
    await chip.click();
    await expect.poll(() => traces(region('Singular-value spectra')).count()).toBe(4);
    await page.setViewportSize({ width: 1280, height: 1800 });
    await page.locator('.main').evaluate((el) => el.scrollTo(0, 0));
    await page.waitForTimeout(300);
    await screenshot('hidden-state');
    await page.setViewportSize({ width: 1280, height: 800 });
    await choose('Model', 'mamba-tiny');
    await expect.poll(() => traces(region('SSM-state norm along the document')).count(), { timeout: 30_000 }).toBe(2);
    expect(await region('Weight change along the document').count()).toBe(0);
    await choose('Model', 'transformer-tiny');
    const cache = region('KV-cache size along the document');
    await expect.poll(() => traces(cache).count(), { timeout: 30_000 }).toBe(2);
    const cacheCsv = (await download(cache, 'Export CSV')).toString('utf8').trim().split('\n');
    const bytes = cacheCsv.slice(1).filter((l) => l.startsWith('layer 0,')).map((l) => Number(l.split(',')[2]));
    expect(bytes.at(-1)).toBeGreaterThan(bytes[0]); // the cache grows with the context

    // Tokens: the book's text coloured by NLL, then by the difference between two models
    await page.getByRole('tab', { name: 'Tokens' }).click();
    await choose('Model', 'ttt-linear-tiny');
    const scroller = heatmap.getByTestId('token-scroller');
    await expect.poll(() => scroller.textContent(), { timeout: 30_000 }).toContain('In the beginning God created the heaven and the earth.');
    expect(await scroller.locator('[data-position="5"]').getAttribute('title')).toMatch(/^position 5 · "e" · NLL \d+\.\d\d nats$/);
    await choose('Colour by', 'NLL difference: ttt-linear-tiny − transformer-tiny');
    await expect.poll(() => scroller.locator('[data-position="5"]').getAttribute('title')).toMatch(/vs the other model$/);
    await scroller.evaluate((el) => el.scrollTo(0, el.scrollHeight));
    await expect.poll(() => scroller.locator(`[data-position="${sampleTokens - 1}"]`).count(), { timeout: 30_000 }).toBe(1);
    await scroller.evaluate((el) => el.scrollTo(0, 0));
    await expect.poll(() => scroller.locator('[data-position="0"]').count()).toBe(1);
    await screenshot('tokens');

    // Comparison: bits per byte along the book and by position range, for all four models
    await page.getByRole('tab', { name: 'Comparison' }).click();
    const table = page.getByRole('table', { name: 'Bits per byte by position range' });
    await expect.poll(() => table.locator('tbody tr').count(), { timeout: 30_000 }).toBe(4);
    expect(await table.locator('thead th').allTextContents()).toEqual(['Model', 'Architecture', 'Tokenizer', 'Run', 'Overall', '0–1k', '1k–8k', '8k–64k', '64k+']);
    await expect.poll(() => traces(region('Bits per byte along the book')).count()).toBe(4);
    const tableCsv = (await download(region('Bits per byte by position range'), 'Export CSV')).toString('utf8').trim().split('\n');
    expect(tableCsv[0]).toBe('run,model,architecture,tokenizer,bytes,bits_per_byte,bits_per_byte_0–1k,bits_per_byte_1k–8k,bits_per_byte_8k–64k,bits_per_byte_64k+');
    expect(tableCsv.slice(1).map((l) => l.split(',')[1]).sort()).toEqual(['mamba-tiny', 'transformer-tiny', 'ttt-linear-tiny', 'ttt-mlp-tiny']);
    await page.setViewportSize({ width: 1280, height: 1100 });
    await screenshot('comparison');
    await page.setViewportSize({ width: 1280, height: 800 });

    // The whole run as one HTML file that opens offline: charts as inline SVG, tables, settings
    const [report] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.getByRole('button', { name: 'Export report' }).click()]);
    const html = readFileSync((await report.path())!, 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    for (const name of ['ttt-linear-tiny', 'mamba-tiny', 'ttt-mlp-tiny', 'transformer-tiny', 'Bits per byte by position range', 'Settings', 'Book SHA-256']) expect(html).toContain(name);
    expect(html).not.toMatch(/<script|<link|\bsrc="|href="http/);
    const offline = await browser.newContext({ offline: true });
    const reader = await offline.newPage();
    await reader.setContent(html);
    const figures = await reader.locator('figure').count();
    expect(figures).toBeGreaterThanOrEqual(1 + 2 * 2 + 2 * 3 + 2); // perplexity; inner loop ×2 layers; weights, PCA, spectra; two state charts
    expect(await reader.locator('figure svg.main-svg').count()).toBe(figures);
    expect(await reader.locator('table').count()).toBe(2);
    await offline.close();
    expect(errors).toEqual([]);
  });

  it('runs a model on the backend and stages picked, and shows where it ran', async () => {
    // only the shipped TTT-Linear, over the sample book left open by the test before
    await page.getByRole('navigation').getByRole('button', { name: 'Models' }).click();
    for (const name of ['mamba-tiny', 'ttt-mlp-tiny', 'transformer-tiny']) await page.getByRole('checkbox', { name: `Select ${name}` }).uncheck();
    await page.getByRole('navigation').getByRole('button', { name: 'Runs' }).click();
    const backend = page.getByRole('combobox', { name: 'Backend' });
    await expect.poll(() => backend.locator('option').allTextContents()).toContain('cpu');
    expect(await backend.locator('option').first().textContent()).toBe('Automatic (wasm)');
    for (const option of await backend.locator('option:disabled').all()) expect(await option.textContent()).toMatch(/^\w+ — unavailable: ./);
    await choose('Backend', 'cpu');
    await page.getByRole('spinbutton', { name: 'Stages' }).fill('2');
    await page.getByRole('button', { name: 'Run analysis' }).click();

    const item = page.getByRole('listitem', { name: 'sample.txt · ttt-linear-tiny', exact: true });
    await expect.poll(() => item.getAttribute('data-status'), { timeout: 90_000, interval: 250 }).toBe('finished');
    await expect.poll(() => item.getByTestId('run-placement').textContent()).toBe('cpu · 2 stages');
    await item.getByRole('button', { name: /^Open / }).click();
    const placement = page.getByRole('table', { name: 'Models in this run' }).getByTestId('model-placement');
    await expect.poll(() => placement.textContent(), { timeout: 30_000 }).toBe('cpu · 2 stages: layers 0 | 1');
    // the choice stays for the next run
    await page.getByRole('button', { name: 'All runs' }).click();
    expect(await page.getByRole('combobox', { name: 'Backend' }).inputValue()).toBe('cpu');
    expect(await page.getByRole('spinbutton', { name: 'Stages' }).inputValue()).toBe('2');
  });
});
