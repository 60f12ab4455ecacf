/**
 * Probes from the app, end to end (web mode, Debian's Chromium): a small needle grid and an intervention on tiny
 * models, started from the Probes page; the heatmaps and the ΔNLL chart appear with the engine's numbers; each
 * exports (PNG, SVG, CSV) and the probe goes into an HTML report.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eBrowser, launchBrowser } from '../helpers/browser.js';
import { tempDir, writeTinyModel } from '../helpers/tiny-models.js';
import { repoRoot, startWeb, stopWeb, type WebMode } from '../helpers/web-mode.js';

const browserChoice = e2eBrowser('test/e2e/probes.test.ts');
const work = tempDir('ttt-e2e-probes-');
let server: WebMode | null = null;
let browser: Browser;
let page: Page;
const book = join(work.dir, 'kjv-start.txt');

beforeAll(async () => {
  if (browserChoice.skip) return;
  const models = [writeTinyModel(work.dir, 'ttt-linear', 'ttt-linear-tiny'), writeTinyModel(work.dir, 'mamba', 'mamba-tiny')];
  writeFileSync(book, readFileSync(join(repoRoot, 'assets', 'corpus', 'kjv.txt')).subarray(0, 8_000).toString('utf8').replace(/\uFFFD+$/, ''));
  server = await startWeb(join(work.dir, 'data'), models, book);
  browser = await launchBrowser(browserChoice);
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, acceptDownloads: true });
});

afterAll(async () => {
  await browser?.close();
  await stopWeb(server);
  work.cleanup();
});

const region = (name: string) => page.getByRole('region', { name, exact: true });

/** The bytes a button saves. */
async function download(scope: Locator | Page, button: string): Promise<Buffer> {
  const [file] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), scope.getByRole('button', { name: button }).click()]);
  return readFileSync((await file.path())!);
}

/** What a chart's plot holds, as Plotly drew it. */
const plotted = (chart: Locator) => chart.locator('.chart-plot').evaluate((el) => (el as unknown as { data: { type?: string; name?: string; z?: unknown; x: ArrayLike<number> }[] }).data
  .map((t) => ({ type: t.type ?? 'scatter', name: t.name ?? '', z: t.z ?? null, points: t.x.length })));

async function fill(label: string, value: string): Promise<void> {
  await page.getByRole('spinbutton', { name: label, exact: true }).fill(value);
}

async function runProbe(name: RegExp): Promise<void> {
  await page.getByRole('button', { name: 'Run probe' }).click();
  const item = page.getByRole('listitem', { name }).first();
  await expect.poll(() => item.getAttribute('data-status'), { timeout: 120_000, interval: 200 }).toBe('finished');
}

describe.skipIf(browserChoice.skip)('probes, end to end', () => {
  it('runs a needle grid and an intervention from the app, draws them and exports them', async () => {
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(server!.url);
    await page.getByRole('navigation').getByRole('button', { name: 'Probes' }).click();
    await expect.poll(() => page.getByRole('checkbox', { name: 'Probe ttt-linear-tiny' }).isChecked()).toBe(true);

    // needle: contexts 256 and 512, three depths, one key, on both models
    await fill('Shortest context', '256');
    await fill('Longest context', '512');
    await fill('Depths', '3');
    await fill('Keys per cell', '1');
    await runProbe(/^Needle retrieval · kjv-start\.txt/);
    const heatmap = region('ttt-linear-tiny: needle retrieval');
    await expect.poll(async () => (await plotted(heatmap))[0]?.type, { timeout: 30_000 }).toBe('heatmap');
    expect(await region('mamba-tiny: needle retrieval').isVisible()).toBe(true);
    const [bits] = await plotted(heatmap);
    expect((bits.z as (number | null)[][]).map((row) => row.length)).toEqual([3, 3]);
    expect((bits.z as number[][]).flat().every((v) => Number.isFinite(v) && v > 0)).toBe(true);
    // the toggle colours by what greedy decoding retrieved: shares in [0, 1]
    await page.getByRole('combobox', { name: 'Colour by' }).selectOption({ label: 'Greedy retrieved' });
    await expect.poll(async () => ((await plotted(heatmap))[0].z as number[][]).flat().every((v) => v >= 0 && v <= 1)).toBe(true);

    const png = await download(heatmap, 'Export PNG');
    expect([...png.subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect((await download(heatmap, 'Export SVG')).toString('utf8').startsWith('<svg')).toBe(true);
    const csv = (await download(heatmap, 'Export CSV')).toString('utf8').trim().split('\n');
    expect(csv[0]).toBe('measure,depth_percent,context_tokens,value,points_from_rows');
    expect(csv).toHaveLength(1 + 2 * 6); // bits and retrieved, per cell
    expect(new Set(csv.slice(1).map((l) => l.split(',')[2]))).toEqual(new Set(['256', '512']));

    // intervention: inner loop frozen and state reset at t = 128 along the first 384 tokens
    await page.getByRole('combobox', { name: 'Probe' }).selectOption({ label: 'Intervention' });
    await fill('Position t', '128');
    await fill('First tokens', '384');
    await runProbe(/^Intervention · kjv-start\.txt/);
    const frozen = region('ΔNLL, inner loop frozen');
    const reset = region('ΔNLL, state reset');
    await expect.poll(async () => (await plotted(reset)).map((t) => t.name), { timeout: 30_000 }).toEqual(['ttt-linear-tiny', 'mamba-tiny']);
    expect((await plotted(frozen)).map((t) => t.name)).toEqual(['ttt-linear-tiny']); // Mamba has no inner loop to freeze
    // position t is marked
    expect(await frozen.locator('.chart-plot').evaluate((el) => (el as unknown as { layout: { shapes: { x0: number }[] } }).layout.shapes[0].x0)).toBe(128);
    const delta = (await download(reset, 'Export CSV')).toString('utf8').trim().split('\n');
    expect(delta[0]).toBe('model,position,delta_nll_nats,points_from_rows');
    // before t nothing changed: ΔNLL is zero there, for both models (position 0, which nothing predicts, is a gap)
    const before = delta.slice(1).map((l) => l.split(',')).filter(([, x]) => Number(x) > 0 && Number(x) < 128);
    expect(new Set(before.map(([name]) => name))).toEqual(new Set(['ttt-linear-tiny', 'mamba-tiny']));
    expect(before.filter(([, , y]) => !(Math.abs(Number(y)) < 1e-4))).toEqual([]);
    // after it, the reset state costs something somewhere
    expect(delta.slice(1).map((l) => l.split(',')).some(([, x, y]) => Number(x) >= 128 && Math.abs(Number(y)) > 1e-3)).toBe(true);
    expect((await download(frozen, 'Export SVG')).toString('utf8')).toContain('t = 128');

    // the report: the intervention's charts as inline SVG, and the settings
    const html = (await download(page, 'Export report')).toString('utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('ΔNLL, inner loop frozen at t = 128');
    expect(html).toContain('ΔNLL, state reset at t = 128');
    expect(html).not.toMatch(/<script/);
    // and the needle probe's: both models' heatmaps and the table of cells
    await page.getByRole('button', { name: /^Open Needle retrieval/ }).click();
    await expect.poll(async () => (await plotted(heatmap))[0]?.type).toBe('heatmap');
    const needleHtml = (await download(page, 'Export report')).toString('utf8');
    expect(needleHtml).toContain('mamba-tiny: needle retrieval, greedy retrieved');
    expect((needleHtml.match(/<figure>/g) ?? []).length).toBe(4);
    expect(needleHtml).toContain('Needle retrieval (2 models)');
    expect(errors).toEqual([]);
  });
});
