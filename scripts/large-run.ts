/**
 * `node --import tsx scripts/large-run.ts`: how the UI copes with a really long run. Not a test (it takes many
 * minutes, and no test asserts a timing); it prints the numbers the README quotes.
 *
 *   1. analyses the whole KJV (4.15M byte tokens) with a tiny random TTT-Linear into out/large-run/data/runs/,
 *      unless a finished run is already there (--fresh redoes it);
 *   2. starts web mode on that data folder, opens the run in Chromium (Playwright) and logs
 *        - open: from clicking "Open" in the run list to the Run view's perplexity chart drawn,
 *        - zoom: from releasing a zoom drag on that chart to its redraw with refined points from the engine,
 *        - each analysis tab (inner loop, hidden state, tokens) until its first chart or text is drawn.
 *
 * Options: --data DIR (default out/large-run/data), --book FILE (default assets/corpus/kjv.txt), --fresh,
 * --max-tokens N (a shorter run, for trying the script out).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { analyzeBook } from '../engine/analysis/analyze.js';
import { engineVersions } from '../engine/cli/analyze.js';
import { selectBackend } from '../engine/core/backend.js';
import { findBrowser, launchBrowser } from '../test/helpers/browser.js';
import { startWeb, stopWeb } from '../test/helpers/web-mode.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { data: { type: 'string' }, book: { type: 'string' }, fresh: { type: 'boolean' }, 'max-tokens': { type: 'string' } },
});
const dataDir = values.data ?? join(root, 'out', 'large-run', 'data');
const book = values.book ?? join(root, 'assets', 'corpus', 'kjv.txt');
const runId = 'kjv-ttt-linear-tiny';
const runDir = join(dataDir, 'runs', runId);
const modelDir = join(dataDir, 'models', 'ttt-linear-tiny');
const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

function finishedRunExists(): boolean {
  try {
    return (JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')) as { status: string }).status === 'finished';
  } catch {
    return false;
  }
}

async function analyse(): Promise<void> {
  rmSync(runDir, { recursive: true, force: true });
  if (!existsSync(modelDir)) {
    execFileSync(process.execPath, [join(root, 'bin', 'ttt-workbench.js'), 'init', '--arch', 'ttt-linear', '--preset', 'tiny', '--out', modelDir], { stdio: 'inherit' });
  }
  const started = performance.now();
  let lastLog = 0;
  const { manifest } = await analyzeBook({
    book, models: [modelDir], runsDir: join(dataDir, 'runs'), runId, backend: await selectBackend('wasm'), versions: engineVersions(),
    maxTokens: values['max-tokens'] ? Number(values['max-tokens']) : undefined,
    onProgress: (p) => {
      if (performance.now() - lastLog < 30_000) return;
      lastLog = performance.now();
      const m = p.models[0];
      log(`analysed ${m.tokensDone.toLocaleString('en-US')} / ${m.tokensTotal.toLocaleString('en-US')} tokens, ${Math.round(m.tokensPerSecond ?? 0)} tok/s`);
    },
  });
  const m = manifest.models[0];
  log(`analysis ${manifest.status}: ${m.tokensDone.toLocaleString('en-US')} tokens in ${((performance.now() - started) / 1000).toFixed(0)} s, ${m.bitsPerByte?.toFixed(3)} bits/byte`);
}

/** Milliseconds until `ready` holds, polling every animation frame in the page. */
async function timeUntil(page: Page, start: number, ready: () => Promise<boolean>, timeoutMs = 120_000): Promise<number> {
  while (!(await ready())) {
    if (performance.now() - start > timeoutMs) throw new Error('timed out');
    await page.waitForTimeout(5);
  }
  return performance.now() - start;
}

async function measureUi(): Promise<void> {
  const web = await startWeb(dataDir, [modelDir], book);
  const browser = await launchBrowser(findBrowser());
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(web.url);
    await page.getByRole('navigation').getByRole('button', { name: 'Runs' }).click();
    const item = page.getByRole('listitem', { name: /^kjv\.txt · ttt-linear-tiny/ });
    await item.waitFor({ timeout: 60_000 });
    const chart = page.getByRole('region', { name: 'Perplexity along the document' });
    const traces = chart.locator('.scatterlayer .trace');

    let start = performance.now();
    await item.getByRole('button', { name: /^Open / }).click();
    const open = await timeUntil(page, start, async () => (await traces.count()) > 0);
    log(`open: Run view charts drawn ${open.toFixed(0)} ms after clicking Open`);

    for (const mode of ['Raw', 'Smoothed'] as const) {
      const before = await chart.getAttribute('data-draws');
      start = performance.now();
      await chart.getByRole('button', { name: mode }).click();
      const ms = await timeUntil(page, start, async () => (await chart.getAttribute('data-draws')) !== before && (await chart.getAttribute('data-busy')) !== 'true');
      log(`switch to ${mode.toLowerCase()}: redrawn in ${ms.toFixed(0)} ms`);
    }

    for (const [from, to] of [[0.3, 0.6], [0.2, 0.8]] as const) {
      const box = (await chart.locator('.nsewdrag').first().boundingBox())!;
      const before = await chart.getAttribute('data-draws');
      await page.mouse.move(box.x + box.width * from, box.y + box.height / 2);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * to, box.y + box.height / 2, { steps: 4 });
      start = performance.now();
      await page.mouse.up();
      const ms = await timeUntil(page, start, async () => (await chart.getAttribute('data-draws')) !== before && (await chart.getAttribute('data-busy')) !== 'true');
      log(`zoom: refined and redrawn ${ms.toFixed(0)} ms after the drag (${await chart.getAttribute('data-range')})`);
    }

    const tabs: [string, string][] = [['Inner loop', 'Inner-loop loss along the document'], ['Hidden state', 'Weight change along the document']];
    for (const [tab, title] of tabs) {
      start = performance.now();
      await page.getByRole('tab', { name: tab }).click();
      const region = page.getByRole('region', { name: title });
      const ms = await timeUntil(page, start, async () => (await region.locator('.scatterlayer .trace').count()) > 0);
      log(`${tab}: first chart drawn in ${ms.toFixed(0)} ms`);
    }
    start = performance.now();
    await page.getByRole('tab', { name: 'Tokens' }).click();
    const tokensMs = await timeUntil(page, start, async () => (await page.getByTestId('token-heatmap-view').locator('[data-position]').count()) > 0);
    log(`Tokens: text drawn in ${tokensMs.toFixed(0)} ms`);
    const scroller = page.getByTestId('token-scroller');
    start = performance.now();
    await scroller.evaluate((el) => (el.scrollTop = el.scrollHeight / 2));
    const midMs = await timeUntil(page, start, async () => (await scroller.locator('[data-position]').count()) > 0 && (await scroller.locator('.token-block-loading').count()) === 0);
    log(`Tokens: jumped to the middle of the book, text drawn in ${midMs.toFixed(0)} ms`);
    mkdirSync(join(root, 'out', 'large-run'), { recursive: true });
    await page.screenshot({ path: join(root, 'out', 'large-run', 'tokens.png') });
  } finally {
    await browser.close();
    await stopWeb(web);
  }
}

try {
  if (values.fresh || !finishedRunExists()) await analyse();
  else log(`reusing the finished run in ${runDir} (--fresh analyses again)`);
  await measureUi();
  process.exit(0);
} catch (error) {
  // one line, not a stack: TF.js's wasm module re-throws uncaught errors with its whole source attached
  process.stderr.write(`large-run: ${(error as Error).message}\n`);
  process.exit(1);
}
