/**
 * The app outlives its engine, end to end (web mode, Debian's Chromium): web mode's server runs the engine as a
 * child process, as the desktop app does. The child is killed (SIGKILL) while a run streams; the page says so in
 * one line, the engine restarts, the run reads as Interrupted with a Resume button (in the list and in its view);
 * Resume carries it on to Finished, with the per-token NLL and bits/byte of an uninterrupted run of the same model over the same book.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type MethodName, type MethodParams, type MethodResult, RpcClient } from '../../engine/protocol.js';
import { e2eBrowser, launchBrowser } from '../helpers/browser.js';
import { tempDir, writeTinyModel } from '../helpers/tiny-models.js';
import { repoRoot, startWeb, stopWeb, type WebMode } from '../helpers/web-mode.js';

const browserChoice = e2eBrowser('test/e2e/recovery.test.ts');
const work = tempDir('ttt-e2e-recovery-');
const dataDir = join(work.dir, 'data');
const book = join(work.dir, 'kjv-start.txt');
let server: WebMode | null = null;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (browserChoice.skip) return;
  const model = writeTinyModel(work.dir, 'ttt-linear', 'ttt-linear-tiny');
  // long enough that the run is still streaming when the engine is killed on a fast machine (30k tokens once
  // finished in under a second), short enough for two slow cores to run it twice
  writeFileSync(book, readFileSync(join(repoRoot, 'assets', 'corpus', 'kjv.txt')).subarray(0, 150_000).toString('utf8').replace(/\uFFFD+$/, ''));
  // a state checkpoint after every chunk (the default is a minute): the kill comes right after the first one
  server = await startWeb(dataDir, [model], book, ['--checkpoint-seconds', '0']);
  browser = await launchBrowser(browserChoice);
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
});

afterAll(async () => {
  await browser?.close();
  await stopWeb(server);
  work.cleanup();
});

/** A client of the engine as a script would be one: over the page's WebSocket, with its token and no Origin. */
async function engineClient(url: string): Promise<{ call<M extends MethodName>(m: M, p: MethodParams<M>): Promise<MethodResult<M>>; close(): void }> {
  const socket = new WebSocket(url.replace(/^http:(\/\/[^/]+)\/\?/, 'ws:$1/rpc?'));
  const client = new RpcClient((frame) => socket.send(frame));
  socket.on('message', (data) => client.receive(data.toString()));
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  return { call: (method, params) => client.call(method, params), close: () => socket.close() };
}

const runItems = () => page.getByRole('listitem', { name: 'kjv-start.txt · ttt-linear-tiny' });
const progressOf = async (item: ReturnType<typeof runItems>) => Number(await item.getByRole('progressbar').getAttribute('aria-valuenow'));

describe.skipIf(browserChoice.skip)('an engine crash in web mode, end to end', () => {
  it('says the engine stopped, restarts it, shows the run Interrupted, and Resume finishes it as an uninterrupted run', async () => {
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(server!.url);
    await page.getByRole('navigation').getByRole('button', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Run analysis' }).click();
    await page.getByTestId('run-view').getByRole('button', { name: 'All runs' }).click();
    const run = runItems().first();
    // past its first checkpoint, well before its end
    const engine = await engineClient(server!.url);
    await expect.poll(() => runItems().count(), { timeout: 30_000, interval: 50 }).toBe(1);
    const runId = (await engine.call('listRuns', {})).runs[0].id;
    const checkpointOf = async () => (await engine.call('getRun', { runId })).manifest.models[0].checkpoint?.position ?? 0;
    await expect.poll(checkpointOf, { timeout: 30_000, interval: 50 }).toBeGreaterThan(0);
    expect(await run.getAttribute('data-status')).toBe('running');

    const killedAt = await progressOf(run);
    const [pid] = server!.enginePids();
    process.kill(pid, 'SIGKILL');
    const notice = page.getByTestId('connection-notice');
    await expect.poll(() => notice.textContent(), { timeout: 15_000, interval: 50 }).toMatch(/engine stopped.*restarting/i);
    // the page stayed, the engine came back (a new process), and the run list says what became of the run
    await expect.poll(() => run.getAttribute('data-status'), { timeout: 60_000, interval: 100 }).toBe('interrupted');
    expect(await notice.count()).toBe(0);
    expect(server!.enginePids()).toHaveLength(2);
    expect(await run.getByText('Interrupted', { exact: true }).count()).toBe(1);

    expect(await run.getByRole('button', { name: 'Resume' }).count()).toBe(1);
    // what the engine kept: rows and a state checkpoint past the start, so Resume goes on rather than over
    const kept = (await engine.call('getRun', { runId })).manifest.models[0];
    expect(kept.checkpoint?.position).toBeGreaterThan(0);
    expect(kept.checkpoint!.position).toBeLessThan(kept.tokensTotal);
    expect(kept.tokensDone).toBeGreaterThanOrEqual(kept.checkpoint!.position);

    // its view says the same and resumes it there
    await run.getByRole('button', { name: /^Open / }).click();
    const view = page.getByTestId('run-view');
    const status = () => view.locator('.page-header .status').first().textContent();
    await expect.poll(status, { timeout: 15_000 }).toBe('interrupted');
    await view.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(status, { timeout: 120_000, interval: 250 }).toBe('finished');
    expect(await view.getByRole('button', { name: 'Resume' }).count()).toBe(0);
    await view.getByRole('button', { name: 'All runs' }).click();
    await expect.poll(() => run.getAttribute('data-status')).toBe('finished');
    expect(await runItems().count()).toBe(1); // the same run, not a new one

    // the same model over the same book, uninterrupted
    await page.getByRole('button', { name: 'Run analysis' }).click();
    await expect.poll(() => runItems().count()).toBe(2);
    await expect.poll(() => runItems().first().getAttribute('data-status'), { timeout: 120_000, interval: 250 }).toBe('finished');

    try {
      const { runs } = await engine.call('listRuns', {});
      expect(runs.map((r) => r.status)).toEqual(['finished', 'finished']);
      const [plain, resumed] = await Promise.all(runs.map((r) => engine.call('getRun', { runId: r.id })));
      // every stored row, in pieces the protocol allows (at most 100,000 points an answer)
      const nll = async (manifest: typeof plain.manifest) => {
        const x: number[] = [], values: number[] = [];
        for (let start = 0; start < manifest.models[0].tokensTotal; start += 50_000) {
          const piece = await engine.call('getSeries', { runId: manifest.id, model: manifest.models[0].key, series: 'nll', points: 100_000, start, end: start + 50_000 });
          expect(piece.downsampled).toBe(false);
          x.push(...piece.x);
          values.push(...piece.columns.nll);
        }
        return { x, nll: values };
      };
      const [a, b] = await Promise.all([nll(plain.manifest), nll(resumed.manifest)]);
      // every position once, in order, in both
      expect(a.x.length).toBeGreaterThanOrEqual(resumed.manifest.models[0].tokensTotal - 1);
      expect(b.x).toEqual(Array.from({ length: a.x.length }, (_, i) => a.x[0] + i));
      expect(b.x).toEqual(a.x);
      const worst = a.nll.reduce((w, v, i) => Math.max(w, Math.abs(v - b.nll[i])), 0);
      expect(worst).toBeLessThanOrEqual(1e-5);
      const [bpbPlain, bpbResumed] = [plain, resumed].map((r) => r.manifest.models[0].bitsPerByte!);
      expect(Math.abs(bpbPlain - bpbResumed)).toBeLessThanOrEqual(1e-5);
      console.log(`killed at ${killedAt}% (checkpoint at ${kept.checkpoint!.position} of ${kept.tokensTotal} tokens), resumed: ${b.x.length} positions, max |ΔNLL| ${worst}, bits/byte ${bpbResumed} vs ${bpbPlain}`);
    } finally {
      engine.close();
    }
    expect(errors).toEqual([]);
  });
});
