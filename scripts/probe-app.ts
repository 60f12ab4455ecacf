/**
 * `node --import tsx scripts/probe-app.ts`: the needle grid of issue 18 run from the app, through the real UI. Starts
 * web mode on a fresh data folder with the shipped demo models and sample book, opens *Probes*, asks for contexts up to
 * `--max-length` (default 16,384) tokens, `--depths` (6) and `--keys` (3), presses *Run probe* in Chromium, and when
 * it finishes prints the time it took and, per model, the heatmap's numbers (greedy retrieved, key bits) by context
 * length and depth, as the page's CSV export gives them. `--out DIR` keeps each heatmap's PNG and CSV and a
 * screenshot there. Not a test (it takes minutes on two cores). Options: --timeout MIN (default 60).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { findBrowser, launchBrowser } from '../test/helpers/browser.js';
import { repoRoot, startWeb, stopWeb } from '../test/helpers/web-mode.js';

const { values } = parseArgs({ options: {
  'max-length': { type: 'string' }, depths: { type: 'string' }, keys: { type: 'string' }, out: { type: 'string' }, timeout: { type: 'string' },
} });
const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const models = ['ttt-linear', 'ttt-mlp', 'transformer', 'mamba'].map((m) => join(repoRoot, 'assets', 'models', m));
const book = join(repoRoot, 'assets', 'books', 'kjv-new-testament.txt');

/** A heatmap CSV (measure, depth %, context, value) as one table per measure: rows by context, columns by depth. */
function tables(csv: string): string {
  const rows = csv.trim().split('\n').slice(1).map((l) => l.split(','));
  const out: string[] = [];
  for (const measure of [...new Set(rows.map((r) => r[0]))]) {
    const mine = rows.filter((r) => r[0] === measure);
    const depths = [...new Set(mine.map((r) => Number(r[1])))].sort((a, b) => a - b);
    const lengths = [...new Set(mine.map((r) => Number(r[2])))].sort((a, b) => a - b);
    out.push(`  ${measure}: context \\ depth ${depths.map((d) => `${d}%`.padStart(7)).join('')}`);
    for (const L of lengths) {
      const cells = depths.map((d) => Number(mine.find((r) => Number(r[1]) === d && Number(r[2]) === L)?.[3]));
      out.push(`  ${String(L).padStart(26)} ${cells.map((v) => (measure.startsWith('Greedy') ? `${Math.round(v * 100)}%` : v.toFixed(1)).padStart(7)).join('')}`);
    }
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ttt-probe-app-'));
  const out = values.out ?? null;
  if (out) mkdirSync(out, { recursive: true });
  const web = await startWeb(dataDir, models, book);
  const browser = await launchBrowser(findBrowser());
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 }, acceptDownloads: true });
    await page.goto(web.url);
    await page.getByRole('navigation').getByRole('button', { name: 'Probes' }).click();
    await page.waitForFunction(() => !document.querySelector('button.button-primary')?.hasAttribute('disabled'));
    await page.getByRole('spinbutton', { name: 'Longest context' }).fill(values['max-length'] ?? '16384');
    await page.getByRole('spinbutton', { name: 'Depths' }).fill(values.depths ?? '6');
    await page.getByRole('spinbutton', { name: 'Keys per cell' }).fill(values.keys ?? '3');
    const started = performance.now();
    await page.getByRole('button', { name: 'Run probe' }).click();
    log('Run probe pressed');
    const item = page.getByTestId('probe-item').first();
    const deadline = Date.now() + Number(values.timeout ?? 60) * 60_000;
    let lastStep = '';
    for (;;) {
      const status = await item.getAttribute('data-status');
      if (status !== 'queued' && status !== 'running') {
        log(`probe ${status} after ${((performance.now() - started) / 1000).toFixed(1)} s: ${await item.locator('.run-meta').textContent()}`);
        if (status !== 'finished') process.exitCode = 1;
        break;
      }
      const step = (await item.getByTestId('probe-step').textContent().catch(() => null)) ?? '';
      if (step.split(':')[0] !== lastStep.split(':')[0]) log(step);
      lastStep = step;
      if (Date.now() > deadline) throw new Error('timed out');
      await page.waitForTimeout(1000);
    }
    if (process.exitCode) return;
    for (const name of models.map((m) => m.split('/').pop()!)) {
      const chart = page.getByRole('region', { name: `${name}: needle retrieval`, exact: true });
      await chart.locator('.main-svg').first().waitFor();
      const [csv] = await Promise.all([page.waitForEvent('download'), chart.getByRole('button', { name: 'Export CSV' }).click()]);
      const text = readFileSync((await csv.path())!, 'utf8');
      process.stdout.write(`${name}\n${tables(text)}\n`);
      if (out) {
        writeFileSync(join(out, `needle-${name}.csv`), text);
        const [png] = await Promise.all([page.waitForEvent('download'), chart.getByRole('button', { name: 'Export PNG' }).click()]);
        writeFileSync(join(out, `needle-${name}.png`), readFileSync((await png.path())!));
      }
    }
    if (out) await page.screenshot({ path: join(out, 'probes.png'), fullPage: true });
  } finally {
    await browser.close();
    await stopWeb(web);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
