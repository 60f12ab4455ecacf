/**
 * The desktop app itself, where Electron's binary exists (it cannot be downloaded on the build machines, so
 * there this file skips and electron/*.test.ts cover main and preload against a stand-in of the Electron API).
 * Needs a display on Linux (run under xvfb-run).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { _electron, type ElectronApplication } from 'playwright-core';
import { build } from 'vite';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tiny-models.js';

const root = join(import.meta.dirname, '..', '..');

function electronBinary(): string | null {
  try {
    const path = createRequire(import.meta.url)('electron') as string;
    return existsSync(path) ? path : null;
  } catch {
    return null; // installed with ELECTRON_SKIP_BINARY_DOWNLOAD
  }
}

const binary = electronBinary();
const hasDisplay = process.platform !== 'linux' || !!process.env.DISPLAY || !!process.env.WAYLAND_DISPLAY;
const work = tempDir('ttt-electron-');
let app: ElectronApplication | undefined;

afterAll(async () => {
  await app?.close();
  work.cleanup();
});

describe.skipIf(!binary || !hasDisplay)('desktop app (Electron)', () => {
  it('opens an isolated window whose preload API reaches the engine process', async () => {
    for (const config of ['vite.main.config.ts', 'vite.preload.config.ts', 'vite.renderer.config.ts']) {
      await build({ configFile: join(root, config), logLevel: 'warn' });
    }
    app = await _electron.launch({ executablePath: binary!, args: [root], env: { ...process.env, TTT_WORKBENCH_HOME: join(work.dir, 'data') } });
    const window = await app.firstWindow();
    expect(await window.title()).toBe('TTT Workbench');
    const isolation = await window.evaluate(() => ({
      api: Object.isFrozen((window as { workbench?: object }).workbench),
      node: typeof (window as { require?: unknown }).require !== 'undefined' || typeof (globalThis as { process?: unknown }).process !== 'undefined',
    }));
    expect(isolation).toEqual({ api: true, node: false });
    await window.getByText('Engine ready').waitFor({ timeout: 60_000 });
    await window.getByRole('navigation').getByRole('button', { name: 'Runs' }).click();
    await window.getByTestId('runs-view').waitFor();
  });
});
