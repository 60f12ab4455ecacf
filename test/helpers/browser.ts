/**
 * The browser the end-to-end tests (and the scripts that drive web mode) launch through playwright-core: the
 * first of CHROMIUM_PATH, Chromium or Chrome at the usual places on Linux, macOS and Windows, and Playwright's
 * own downloaded Chromium. Without one the e2e files skip with one line saying how to get one, except in CI
 * (CI=true), where they run and fail with that line.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';

/** Where Chromium and Chrome install themselves, per platform, most likely first. */
export function knownBrowserPaths(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): string[] {
  if (platform === 'darwin') {
    const apps = ['Chromium.app/Contents/MacOS/Chromium', 'Google Chrome.app/Contents/MacOS/Google Chrome', 'Google Chrome Canary.app/Contents/MacOS/Google Chrome Canary'];
    return [...apps.map((a) => join('/Applications', a)), ...apps.map((a) => join(homedir(), 'Applications', a))];
  }
  if (platform === 'win32') {
    const roots = [env.LOCALAPPDATA, env.PROGRAMFILES, env['PROGRAMFILES(X86)']].filter((r): r is string => !!r);
    const exes = ['Chromium\\Application\\chrome.exe', 'Google\\Chrome\\Application\\chrome.exe', 'Microsoft\\Edge\\Application\\msedge.exe'];
    return exes.flatMap((exe) => roots.map((r) => `${r}\\${exe}`));
  }
  return ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable', '/snap/bin/chromium', '/usr/local/bin/chromium', '/opt/google/chrome/chrome'];
}

function executable(path: string): boolean {
  try {
    accessSync(path, process.platform === 'win32' ? constants.F_OK : constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Playwright's own Chromium (`npx playwright install chromium`), where it has been downloaded. */
function playwrightChromium(): string | null {
  try {
    const path = chromium.executablePath();
    return path && existsSync(path) ? path : null;
  } catch {
    return null;
  }
}

export interface BrowserChoice {
  /** The browser's executable, or null when none was found. */
  readonly path: string | null;
  /** One line: why there is none and how to get one (null when found). */
  readonly missing: string | null;
}

export function findBrowser(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): BrowserChoice {
  const given = env.CHROMIUM_PATH;
  if (given) {
    return executable(given) ? { path: given, missing: null } : { path: null, missing: `CHROMIUM_PATH=${given} is not an executable file: point it at Chromium or Chrome, or unset it to search the usual places` };
  }
  const found = knownBrowserPaths(platform, env).find(executable) ?? playwrightChromium();
  if (found) return { path: found, missing: null };
  const install = platform === 'darwin' ? 'brew install --cask chromium' : platform === 'win32' ? 'winget install Google.Chrome' : 'apt-get install chromium';
  return { path: null, missing: `no Chromium or Chrome found (CHROMIUM_PATH, the usual install paths, Playwright's browsers): install one (\`${install}\`, or \`npx playwright install chromium\`) or set CHROMIUM_PATH` };
}

const isCI = (env: NodeJS.ProcessEnv) => env.CI === 'true' || env.CI === '1';

export interface E2EBrowser extends BrowserChoice {
  /** Skip the file: no browser, and not in CI. */
  readonly skip: boolean;
}

/**
 * The browser for an e2e file. With none and CI unset, prints the one-line reason (once per file) and says
 * skip; in CI it does not skip, and `launchBrowser` fails with the reason.
 */
export function e2eBrowser(file: string, env: NodeJS.ProcessEnv = process.env): E2EBrowser {
  const choice = findBrowser(env);
  const skip = choice.path === null && !isCI(env);
  if (skip) process.stderr.write(`${file}: skipped: ${choice.missing}\n`);
  return { ...choice, skip };
}

export async function launchBrowser(choice: BrowserChoice): Promise<Browser> {
  if (!choice.path) throw new Error(choice.missing ?? 'no browser');
  return chromium.launch({
    executablePath: choice.path,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}
