/** How the e2e tests find a browser: CHROMIUM_PATH first, then the usual paths; CI never skips. */
import { describe, expect, it } from 'vitest';
import { e2eBrowser, findBrowser, knownBrowserPaths } from './helpers/browser.js';

describe('findBrowser', () => {
  it('takes CHROMIUM_PATH when it is an executable file', () => {
    expect(findBrowser({ CHROMIUM_PATH: process.execPath })).toEqual({ path: process.execPath, missing: null });
  });

  it('names a CHROMIUM_PATH that is not one, in one line', () => {
    const choice = findBrowser({ CHROMIUM_PATH: '/nonexistent/chromium' });
    expect(choice.path).toBeNull();
    expect(choice.missing).toMatch(/^CHROMIUM_PATH=\/nonexistent\/chromium is not an executable file/);
    expect(choice.missing).not.toContain('\n');
  });

  it('knows where each platform installs Chromium and Chrome', () => {
    expect(knownBrowserPaths('linux')).toContain('/usr/bin/chromium');
    expect(knownBrowserPaths('darwin')).toContain('/Applications/Google Chrome.app/Contents/MacOS/Google Chrome');
    expect(knownBrowserPaths('win32', { PROGRAMFILES: 'C:\\Program Files' })).toContain('C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe');
  });

  it('skips without a browser, but not in CI', () => {
    expect(e2eBrowser('x', { CHROMIUM_PATH: '/nonexistent/chromium' }).skip).toBe(true);
    expect(e2eBrowser('x', { CHROMIUM_PATH: '/nonexistent/chromium', CI: 'true' }).skip).toBe(false);
  });
});
