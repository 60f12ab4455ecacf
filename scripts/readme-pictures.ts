/**
 * `node --import tsx scripts/readme-pictures.ts [--tokens N]`: the README's pictures of the four demo models
 * (assets/models/*) on the sample book (assets/books/kjv-new-testament.txt), as the app draws them.
 *
 *   1. analyses the first N tokens of the book (default 32,768) with all four models side by side, the
 *      Transformer with a sliding window of 1,024 tokens (its trained context), into <data>/runs/readme-demo,
 *      unless a finished run of that length is already there (--fresh redoes it);
 *   2. starts web mode on that data folder, opens the run in Chromium or Chrome (test/helpers/browser.ts) and
 *      writes docs/screenshots/{run,inner-loop,hidden-state,tokens,comparison}.png: the perplexity of the four
 *      models by position, the inner loop and the hidden state of TTT-Linear, the token heatmap of TTT-Linear
 *      against the Transformer, and the comparison table.
 *
 * Options: --tokens N, --data DIR (default out/readme-pictures), --out DIR (default docs/screenshots), --fresh.
 * The whole book (952,924 tokens) takes about half an hour on a 2-core machine: `--tokens 952924`.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Locator, Page } from 'playwright-core';
import { analyzeBook } from '../engine/analysis/analyze.js';
import { engineVersions } from '../engine/cli/analyze.js';
import { selectBackend } from '../engine/core/backend.js';
import { findBrowser, launchBrowser } from '../test/helpers/browser.js';
import { startWeb, stopWeb } from '../test/helpers/web-mode.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { tokens: { type: 'string' }, data: { type: 'string' }, out: { type: 'string' }, fresh: { type: 'boolean' } },
});
const tokens = Number(values.tokens ?? 32_768);
if (!Number.isInteger(tokens) || tokens < 1) throw new Error(`--tokens must be a positive integer, got "${values.tokens}"`);
const dataDir = values.data ?? join(root, 'out', 'readme-pictures');
const outDir = values.out ?? join(root, 'docs', 'screenshots');
const book = join(root, 'assets', 'books', 'kjv-new-testament.txt');
const models = ['ttt-linear', 'ttt-mlp', 'transformer', 'mamba'].map((name) => join(root, 'assets', 'models', name));
const runId = 'readme-demo';
const runDir = join(dataDir, 'runs', runId);
const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

function finishedRun(): boolean {
  try {
    const manifest = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')) as { status: string; models: { tokensDone: number }[] };
    return manifest.status === 'finished' && manifest.models.every((m) => m.tokensDone === Math.min(tokens, 952_924));
  } catch {
    return false;
  }
}

async function analyse(): Promise<void> {
  rmSync(runDir, { recursive: true, force: true });
  let lastLog = 0;
  const { manifest } = await analyzeBook({
    book, models, runsDir: join(dataDir, 'runs'), runId, maxTokens: tokens, // the Transformer in its trained context, by default
    backend: await selectBackend('wasm'), versions: engineVersions(),
    onProgress: (p) => {
      if (performance.now() - lastLog < 30_000) return;
      lastLog = performance.now();
      for (const m of p.models) log(`${m.model}: ${m.tokensDone.toLocaleString('en-US')} / ${m.tokensTotal.toLocaleString('en-US')} tokens, ${Math.round(m.tokensPerSecond ?? 0)} tok/s`);
    },
  });
  for (const m of manifest.models) log(`${m.name}: ${m.bitsPerByte?.toFixed(3)} bits/byte over ${m.tokensDone.toLocaleString('en-US')} tokens`);
}

/** Picks the option whose text starts with `text` in the select labelled `label`. */
async function choose(page: Page, label: string, text: string): Promise<void> {
  const select = page.getByLabel(label, { exact: true });
  const options = await select.locator('option').allTextContents();
  const option = options.find((o) => o.startsWith(text));
  if (!option) throw new Error(`${label}: no option starting with "${text}" (${options.join(' | ')})`);
  await select.selectOption({ label: option });
}

const traces = (chart: Locator) => chart.locator('.scatterlayer .trace');

async function until(check: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function pictures(url: string): Promise<void> {
  const browser = await launchBrowser(findBrowser());
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const region = (name: string) => page.getByRole('region', { name, exact: true });
    const shot = async (name: string, height = 800) => {
      await page.setViewportSize({ width: 1280, height });
      await page.mouse.move(1, 1); // no hover label in the picture
      await page.locator('.main').evaluate((el) => el.scrollTo(0, 0));
      await page.waitForTimeout(800); // let Plotly's redraw after the resize settle
      await page.screenshot({ path: join(outDir, `${name}.png`) });
      log(`wrote ${join(outDir, `${name}.png`)}`);
      await page.setViewportSize({ width: 1280, height: 800 });
    };
    await page.goto(url);
    await page.getByRole('navigation').getByRole('button', { name: 'Runs' }).click();
    const item = page.getByRole('listitem', { name: /^kjv-new-testament\.txt · / }).first();
    await item.getByRole('button', { name: /^Open / }).click();

    const perplexity = region('Perplexity along the document');
    await until(async () => (await traces(perplexity).count()) === 4, 'the perplexity chart');
    // past the first few tokens (perplexities in the thousands there would flatten every curve): a drag across
    // the plot, as a person zooms, from about position 16 to the end
    const box = (await perplexity.locator('.nsewdrag').first().boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.27, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.999, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await until(async () => /^\d+-\d+$/.test((await perplexity.getAttribute('data-range')) ?? ''), 'the zoomed perplexity chart');
    await shot('run', 1100);

    await page.getByRole('tab', { name: 'Inner loop' }).click();
    await choose(page, 'Model', 'ttt-linear');
    const losses = region('Inner-loop loss along the document');
    await until(async () => (await traces(losses).count()) === 3, 'the inner-loop chart');
    await shot('inner-loop', 1100);

    await page.getByRole('tab', { name: 'Hidden state' }).click();
    await choose(page, 'Model', 'ttt-linear');
    await until(async () => (await traces(region('Weight change along the document')).count()) > 0, 'the weight-change chart');
    await until(async () => (await traces(region('Singular-value spectra')).count()) > 0, 'the spectra');
    await shot('hidden-state', 1800);

    await page.getByRole('tab', { name: 'Tokens' }).click();
    await choose(page, 'Model', 'ttt-linear');
    await choose(page, 'Colour by', 'NLL difference: ttt-linear − transformer');
    const scroller = page.getByTestId('token-heatmap-view').getByTestId('token-scroller');
    await until(async () => ((await scroller.locator('[data-position="5"]').getAttribute('title')) ?? '').endsWith('vs the other model'), 'the token heatmap');
    await shot('tokens');

    await page.getByRole('tab', { name: 'Comparison' }).click();
    const table = page.getByRole('table', { name: 'Bits per byte by position range' });
    await until(async () => (await table.locator('tbody tr').count()) === 4, 'the comparison table');
    await until(async () => (await traces(region('Bits per byte along the book')).count()) === 4, 'the comparison chart');
    await shot('comparison', 1100);
  } finally {
    await browser.close();
  }
}

async function main(): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  if (values.fresh || !finishedRun()) {
    log(`analysing the first ${tokens.toLocaleString('en-US')} tokens of ${book} with ${models.length} models`);
    await analyse();
  }
  const web = await startWeb(dataDir, models, book);
  try {
    await pictures(web.url);
  } finally {
    await stopWeb(web);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`readme-pictures: ${(error as Error).message}\n`);
    process.exit(1);
  },
);
