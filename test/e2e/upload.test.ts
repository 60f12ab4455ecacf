/**
 * Web mode opens books the browser's way: through the file chooser of *Open book*, and by a drop on the window
 * (and adds a model from its folder's files);
 * the bytes go to the engine (`uploadFile`), which keeps them in the app's library folder. A file over the upload
 * limit (set small here with `--upload-limit`) gets the engine's one-line error.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eBrowser, launchBrowser } from '../helpers/browser.js';
import { sampleText, tempDir, writeTinyModel } from '../helpers/tiny-models.js';

const root = join(import.meta.dirname, '..', '..');
const browserChoice = e2eBrowser('test/e2e/upload.test.ts');
const work = tempDir('ttt-upload-');
const dataDir = join(work.dir, 'data');
let child: ChildProcess | null = null;
let browser: Browser;
let page: Page;

async function startWeb(args: string[]): Promise<string> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'scripts/web.ts', '--port', '0', '--data', dataDir, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  child = proc;
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /Workbench ready: (\S+)\n/.exec(out);
      if (match) resolve(match[1]);
    });
    proc.once('exit', (code) => reject(new Error(`web mode exited with ${code}: ${err || out}`)));
  });
}

beforeAll(async () => {
  if (browserChoice.skip) return;
  const model = writeTinyModel(work.dir, 'ttt-linear', 'ttt-linear-tiny');
  writeFileSync(join(work.dir, 'sample.txt'), sampleText);
  // 48 KiB: books up to that size upload, a larger one is refused
  const url = await startWeb(['--model', model, '--book', join(work.dir, 'sample.txt'), '--upload-limit', String(48 / 1024)]);
  browser = await launchBrowser(browserChoice);
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(url);
  await page.getByTestId('library-view').getByRole('listitem', { name: 'sample.txt' }).waitFor();
});

afterAll(async () => {
  await browser?.close();
  if (child) {
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  work.cleanup();
});

const luke = sampleText.repeat(3).replace(/God/g, 'Luke');
const acts = sampleText.repeat(5).replace(/God/g, 'Acts');

describe.skipIf(browserChoice.skip)('web mode: books and models from the browser', () => {
  it('opens a book picked in the file chooser, kept in the library folder', async () => {
    await page.getByRole('button', { name: 'Open book' }).click();
    const dialog = page.getByRole('dialog', { name: 'Open book' });
    const [chooser] = await Promise.all([page.waitForEvent('filechooser'), dialog.getByRole('button', { name: 'Choose file…' }).click()]);
    await chooser.setFiles({ name: 'luke.txt', mimeType: 'text/plain', buffer: Buffer.from(luke) });
    const card = page.getByRole('listitem', { name: 'luke.txt' });
    await card.waitFor();
    await expect.poll(() => card.getByText('Open', { exact: true }).count()).toBe(1);
    expect(await dialog.count()).toBe(0);
    expect(readFileSync(join(dataDir, 'books', 'luke.txt'), 'utf8')).toBe(luke);
  });

  it('opens a book dropped on the window', async () => {
    const transfer = await page.evaluateHandle((text) => {
      const data = new DataTransfer();
      data.items.add(new File([text], 'acts.txt', { type: 'text/plain' }));
      return data;
    }, acts);
    const library = page.getByTestId('library-view');
    await library.dispatchEvent('dragover', { dataTransfer: transfer });
    await library.dispatchEvent('drop', { dataTransfer: transfer });
    const card = page.getByRole('listitem', { name: 'acts.txt' });
    await card.waitFor();
    await expect.poll(() => card.getByText('Open', { exact: true }).count()).toBe(1);
    expect(readFileSync(join(dataDir, 'books', 'acts.txt'), 'utf8')).toBe(acts);
  });

  it('adds a model from its folder\'s files picked in the browser', async () => {
    const source = writeTinyModel(work.dir, 'mamba', 'mamba-picked');
    await page.getByRole('navigation').getByRole('button', { name: 'Models' }).click();
    await page.getByRole('button', { name: 'Add model' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add model' });
    const [chooser] = await Promise.all([page.waitForEvent('filechooser'), dialog.getByRole('button', { name: 'Choose files…' }).click()]);
    await chooser.setFiles([join(source, 'config.json'), join(source, 'model.safetensors')]);
    // loose files carry no folder name: the engine's folder is named after the time they came
    const box = page.getByRole('checkbox', { name: /^Select model-\d{14}$/ });
    await box.waitFor();
    const name = (await box.getAttribute('aria-label'))!.replace('Select ', '');
    expect(readFileSync(join(dataDir, 'models', name, 'model.safetensors'))).toEqual(readFileSync(join(source, 'model.safetensors')));
    await page.getByRole('navigation').getByRole('button', { name: 'Library' }).click();
  });

  it('refuses a file over the upload limit with one line naming it', async () => {
    await page.getByRole('button', { name: 'Open book' }).click();
    const dialog = page.getByRole('dialog', { name: 'Open book' });
    const [chooser] = await Promise.all([page.waitForEvent('filechooser'), dialog.getByRole('button', { name: 'Choose file…' }).click()]);
    await chooser.setFiles({ name: 'too-big.txt', mimeType: 'text/plain', buffer: Buffer.alloc(64 * 1024, 'a') });
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/^too-big\.txt: 64 KiB is over web mode's upload limit of 48 KiB for a book; open it by its path on the engine's machine instead/);
    expect(await page.getByRole('listitem', { name: 'too-big.txt' }).count()).toBe(0);
  });
});
