/**
 * `node --import tsx scripts/live-run.ts`: what a new user meets, timed through the real UI. Starts web mode on a
 * fresh data folder with the shipped demo models and sample book, presses *Run analysis* in Chromium and prints:
 *   - first chart: from the press to the perplexity chart drawing every model's curve,
 *   - liveness: the longest wait between two forward moves of the chart's last point while the run goes on,
 *   - the whole run: from the press to *finished*, with each model's tokens/s and bits per byte,
 *   - the engine's peak resident memory (web mode's process: the engine and its worker threads).
 * Not a test (it takes minutes, and no test asserts a timing). Options: --max-tokens N (the run's "First tokens"),
 * --timeout MIN (default 30), --keep (keep the data folder).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium, type Locator } from 'playwright-core';
import type { RunManifest } from '../engine/protocol.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { 'max-tokens': { type: 'string' }, timeout: { type: 'string' }, keep: { type: 'boolean' } } });
const timeoutMs = Number(values.timeout ?? 30) * 60_000;
const dataDir = mkdtempSync(join(tmpdir(), 'ttt-live-run-'));
const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

async function startWeb(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/web.ts', '--port', '0', '--data', dataDir], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /Workbench ready: (\S+)\n/.exec(out);
      if (match) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`web mode exited with ${code}`)));
  });
  return { child, url };
}

/** Peak resident memory of a process so far (Linux: VmHWM), in MiB. */
const peakRssMiB = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

/** The largest x any trace of a chart draws. */
const lastX = (chart: Locator) => chart.locator('.chart-plot').evaluate((el) => {
  const data = (el as unknown as { data?: { x: ArrayLike<number> }[] }).data ?? [];
  return Math.max(0, ...data.map((t) => (t.x.length ? t.x[t.x.length - 1] : 0)));
});

async function main(): Promise<void> {
  const web = await startWeb();
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(web.url);
    await page.getByRole('navigation').getByRole('button', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Run analysis' }).waitFor();
    await page.waitForFunction(() => !document.querySelector('button.button-primary')?.hasAttribute('disabled'));
    if (values['max-tokens']) await page.getByLabel('First tokens').fill(values['max-tokens']);
    const models = (await page.locator('.page-header').textContent())?.match(/with (.+)$/)?.[1] ?? '';
    const expected = models.split(',').length;
    log(`pressing Run analysis: ${models}`);
    const pressed = performance.now();
    await page.getByRole('button', { name: 'Run analysis' }).click();
    const chart = page.getByRole('region', { name: 'Perplexity along the document', exact: true });
    const traces = chart.locator('.scatterlayer .trace');
    while ((await traces.count()) < expected) {
      if (performance.now() - pressed > timeoutMs) throw new Error('timed out waiting for the first chart');
      await page.waitForTimeout(50);
    }
    log(`first chart: all ${expected} models drawn ${((performance.now() - pressed) / 1000).toFixed(1)} s after pressing Run analysis`);

    const status = page.getByTestId('run-view').locator('.page-header .status').first();
    let x = await lastX(chart), moved = performance.now(), longest = 0;
    while ((await status.textContent()) === 'running') {
      if (performance.now() - pressed > timeoutMs) throw new Error('timed out waiting for the run to finish');
      await page.waitForTimeout(100);
      const now = await lastX(chart);
      if (now > x) {
        longest = Math.max(longest, performance.now() - moved);
        [x, moved] = [now, performance.now()];
      }
    }
    const total = (performance.now() - pressed) / 1000;
    log(`liveness: the chart's last point moved forward at least every ${(longest / 1000).toFixed(1)} s while the run went on`);
    log(`whole run: ${(await status.textContent())} ${total.toFixed(0)} s (${(total / 60).toFixed(1)} min) after pressing Run analysis`);
    const runsDir = join(dataDir, 'runs');
    const manifest = JSON.parse(readFileSync(join(runsDir, readdirSync(runsDir)[0], 'manifest.json'), 'utf8')) as RunManifest;
    for (const m of manifest.models) {
      log(`  ${m.name.padEnd(12)} ${m.status} ${m.tokensDone.toLocaleString('en-US')} tokens, ${Math.round(m.tokensPerSecond ?? 0).toLocaleString('en-US')} tok/s side by side, ${m.bitsPerByte?.toFixed(3)} bits/byte${m.attention ? ` (${m.attention})` : ''}`);
    }
    log(`engine peak RSS with the live chart open: ${peakRssMiB(web.child.pid!).toFixed(0)} MiB`);
  } finally {
    await browser.close();
    web.child.kill('SIGTERM');
    if (!values.keep) rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (error: unknown) => {
  process.stderr.write(`live-run: ${(error as Error).message}\n`);
  process.exit(1);
});
