/**
 * End to end, as a person uses it: the real engine in web mode (`scripts/web.ts`), Debian's Chromium driven
 * by playwright-core, elements found by role and accessible name. Tiny random models and a few KB of text keep
 * it short on two cores. Screenshots go to out/e2e/; with UPDATE_SCREENSHOTS=1 also to docs/screenshots/.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleText, tempDir, writeTinyModel } from '../helpers/tiny-models.js';

const root = join(import.meta.dirname, '..', '..');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const shotsDir = join(root, 'out', 'e2e');
const docsShots = process.env.UPDATE_SCREENSHOTS === '1' ? join(root, 'docs', 'screenshots') : null;
const kjv = join(root, '..', 'shared', 'corpus', 'kjv.txt');

const work = tempDir('ttt-e2e-');
const dataDir = join(work.dir, 'data');
let server: { child: ChildProcess; url: string } | null = null;
let browser: Browser;
let page: Page;
let modelA: string, modelB: string, book: string;

/** Starts `npm run web`'s script and resolves with the one line it prints. */
async function startWeb(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/web.ts', '--port', '0', '--data', dataDir, '--model', modelA, '--model', modelB, '--book', join(work.dir, 'sample.txt')], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /^Workbench ready: (http:\/\/127\.0\.0\.1:\d+\/\?token=\w+)\n$/.exec(out);
      if (match) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`web mode exited with ${code}: ${err || out}`)));
  });
  return { child, url };
}

async function stopWeb(): Promise<void> {
  if (!server) return;
  const { child } = server;
  server = null;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function screenshot(name: string): Promise<void> {
  const file = join(shotsDir, `${name}.png`);
  await page.screenshot({ path: file });
  if (docsShots) copyFileSync(file, join(docsShots, `${name}.png`));
}

beforeAll(async () => {
  mkdirSync(shotsDir, { recursive: true });
  modelA = writeTinyModel(work.dir, 'ttt-linear', 'ttt-linear-tiny');
  modelB = writeTinyModel(work.dir, 'mamba', 'mamba-tiny');
  writeFileSync(join(work.dir, 'sample.txt'), sampleText.repeat(4));
  // ~16 KB: long enough that a run is still going when the test cancels it, short enough for two slow cores
  book = join(work.dir, 'genesis.txt');
  writeFileSync(book, existsSync(kjv) ? readFileSync(kjv).subarray(0, 16_000).toString('utf8').replace(/\uFFFD+$/, '') : sampleText.repeat(28));
  server = await startWeb();
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
});

afterAll(async () => {
  await browser?.close();
  await stopWeb();
  work.cleanup();
});

const runItems = () => page.getByRole('listitem', { name: 'genesis.txt · ttt-linear-tiny, mamba-tiny' });
const progressOf = async (item: ReturnType<typeof runItems>) => Number(await item.getByRole('progressbar').getAttribute('aria-valuenow'));

describe('web mode, end to end', () => {
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
    await screenshot('models');

    // Runs: start one, watch it progress, cancel it
    await page.getByRole('navigation').getByRole('button', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Run analysis' }).click();
    const first = runItems().first();
    await expect.poll(() => progressOf(first), { timeout: 60_000, interval: 50 }).toBeGreaterThan(0);
    await first.getByRole('button', { name: 'Cancel run' }).click();
    await expect.poll(() => first.getAttribute('data-status'), { timeout: 30_000 }).toBe('cancelled');

    // start another and let it finish
    await page.getByRole('button', { name: 'Run analysis' }).click();
    await expect.poll(() => runItems().count()).toBe(2);
    const second = runItems().first();
    await expect.poll(() => progressOf(second), { timeout: 60_000, interval: 100 }).toBeGreaterThan(0);
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
});
