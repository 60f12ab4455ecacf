/**
 * `node --import tsx scripts/live-run.ts`: what a new user meets, timed through the real UI. Starts web mode on a
 * fresh data folder with the shipped demo models and sample book, presses *Run analysis* in Chromium and prints:
 *   - first chart: from the press to the perplexity chart drawing every model's curve,
 *   - liveness: the longest wait between two forward moves of the chart's last point while the run goes on,
 *   - the whole run: from the press to *finished*, with each model's tokens/s and bits per byte,
 *   - the ETA's accuracy: the run's estimated time left (its `runProgress` notifications, as the Runs page shows
 *     them) against the time it really took, from 10% of the run on,
 *   - memory: web mode's processes together (the engine, its worker threads and, where it runs apart, the engine
 *     process), resident memory sampled every second with the live chart open, by tenths of the run.
 * Not a test (it takes minutes, and no test asserts a timing). Options: --max-tokens N (the run's "First tokens"),
 * --book FILE and --model DIR (repeatable) instead of the shipped ones (e.g. the whole KJV, 4.15M tokens, with a
 * tiny model: the memory of a long live run), --timeout MIN (default 30), --keep (keep the data folder).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Locator } from 'playwright-core';
import { WebSocket } from 'ws';
import type { NotificationParams, RunManifest } from '../engine/protocol.js';
import { findBrowser, launchBrowser } from '../test/helpers/browser.js';
import { startWeb, stopWeb } from '../test/helpers/web-mode.js';

const { values } = parseArgs({
  options: { 'max-tokens': { type: 'string' }, timeout: { type: 'string' }, keep: { type: 'boolean' }, book: { type: 'string' }, model: { type: 'string', multiple: true } },
});
const timeoutMs = Number(values.timeout ?? 30) * 60_000;
const dataDir = mkdtempSync(join(tmpdir(), 'ttt-live-run-'));
const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

/** Resident memory of a process and all its descendants now (Linux /proc), in MiB. */
function treeRssMiB(root: number): number {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // a process that ended meanwhile
    }
  }
  let kb = 0;
  for (const stack = [root]; stack.length > 0;) {
    const pid = stack.pop()!;
    try {
      kb += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      continue;
    }
    stack.push(...(children.get(pid) ?? []));
  }
  return kb / 1024;
}

/** The largest x any trace of a chart draws. */
const lastX = (chart: Locator) => chart.locator('.chart-plot').evaluate((el) => {
  const data = (el as unknown as { data?: { x: ArrayLike<number> }[] }).data ?? [];
  return Math.max(0, ...data.map((t) => (t.x.length ? t.x[t.x.length - 1] : 0)));
});

/** The run's progress as the engine pushes it: a second connection beside the page's, as any client may open. */
function listenForProgress(url: string, seen: NotificationParams<'runProgress'>[]): WebSocket {
  const page = new URL(url);
  const socket = new WebSocket(`ws://${page.host}/rpc?token=${page.searchParams.get('token')}`);
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { method?: string; params?: unknown };
    if (message.method === 'runProgress') seen.push(message.params as NotificationParams<'runProgress'>);
  });
  return socket;
}

async function main(): Promise<void> {
  const web = await startWeb(dataDir, values.model ?? [], values.book);
  const browser = await launchBrowser(findBrowser());
  const progress: NotificationParams<'runProgress'>[] = [];
  const socket = listenForProgress(web.url, progress);
  const memory: { fraction: number; mib: number }[] = [];
  const sampler = setInterval(() => memory.push({ fraction: progress.at(-1)?.fraction ?? 0, mib: treeRssMiB(web.child.pid!) }), 1000);
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(web.url);
    await page.getByRole('navigation').getByRole('button', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Run analysis' }).waitFor();
    await page.waitForFunction(() => !document.querySelector('button.button-primary')?.hasAttribute('disabled'));
    if (values['max-tokens']) await page.getByLabel('First tokens').fill(values['max-tokens']);
    const models = (await page.locator('.page-header').textContent())?.match(/with (.+?)(?:Run analysis)?$/)?.[1] ?? '';
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
    reportEta(progress, manifest);
    reportMemory(memory);
  } finally {
    clearInterval(sampler);
    socket.close();
    await browser.close();
    await stopWeb(web);
    if (!values.keep) rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The estimated time left against the real one, at each tenth of the run from the first on, and the worst error. */
function reportEta(progress: readonly NotificationParams<'runProgress'>[], manifest: RunManifest): void {
  const end = progress.at(-1)?.elapsedSeconds;
  if (end === undefined || !manifest.finishedAt) return void log('ETA: no progress was seen');
  let worst = 0;
  const lines: string[] = [];
  for (const p of progress) {
    if (p.fraction < 0.1 || p.etaSeconds === null || p.fraction >= 0.99) continue;
    const real = end - p.elapsedSeconds;
    if (real <= 0) continue;
    const error = p.etaSeconds / real - 1;
    worst = Math.max(worst, Math.abs(error));
    const tenth = Math.floor(p.fraction * 10);
    if (lines.length < tenth) lines.push(`${tenth * 10}%: said ${p.etaSeconds.toFixed(0)} s left, took ${real.toFixed(0)} s (${(error * 100).toFixed(0)}%)`);
  }
  log(`ETA after the first 10%: worst error ${(worst * 100).toFixed(0)}% of the time really left (${progress.length} updates)`);
  for (const line of lines) log(`  ${line}`);
}

function reportMemory(memory: readonly { fraction: number; mib: number }[]): void {
  if (memory.length === 0) return;
  const peak = Math.max(...memory.map((m) => m.mib));
  const byTenth = Array.from({ length: 10 }, (_, k) => Math.max(0, ...memory.filter((m) => Math.min(9, Math.floor(m.fraction * 10)) === k).map((m) => m.mib)));
  log(`memory of web mode's processes with the live chart open: peak ${peak.toFixed(0)} MiB; by tenth of the run: ${byTenth.map((v) => v.toFixed(0)).join(' ')} MiB`);
}

main().then(() => process.exit(0), (error: unknown) => {
  process.stderr.write(`live-run: ${(error as Error).message}\n`);
  process.exit(1);
});
