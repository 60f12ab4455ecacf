import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../test/helpers/tiny-models.js';
import { classifyPaths, shippedAssets } from './files.js';
import { menuTemplate } from './menu.js';
import { defaultSettings, loadSettings, saveSettings, withRecentBook } from './settings.js';
import type { AppCommand } from './api.js';

const work = tempDir('ttt-settings-');
afterAll(() => work.cleanup());

describe('settings', () => {
  it('round-trips window bounds and recent books, and falls back on bad files', () => {
    const file = join(work.dir, 'profile', 'settings.json');
    expect(loadSettings(file)).toEqual(defaultSettings);
    const settings = withRecentBook(withRecentBook({ ...defaultSettings, window: { x: 10, y: 20, width: 1400, height: 900, maximized: false } }, '/a.txt'), '/b.txt');
    saveSettings(file, withRecentBook(settings, '/a.txt'));
    expect(loadSettings(file)).toEqual({ window: { x: 10, y: 20, width: 1400, height: 900, maximized: false }, recentBooks: ['/a.txt', '/b.txt'] });
    writeFileSync(file, JSON.stringify({ window: { width: 50, height: 'tall', x: 5 }, recentBooks: ['/c.txt', 7] }));
    expect(loadSettings(file)).toEqual({ window: { width: 1280, height: 820, maximized: false }, recentBooks: ['/c.txt'] });
    writeFileSync(file, '{ not json');
    expect(loadSettings(file)).toEqual(defaultSettings);
  });

  it('keeps at most ten recent books, newest first, without duplicates', () => {
    let settings = defaultSettings;
    for (let i = 0; i < 12; i++) settings = withRecentBook(settings, `/book-${i % 11}.txt`);
    expect(settings.recentBooks).toHaveLength(10);
    expect(settings.recentBooks[0]).toBe('/book-0.txt');
    expect(new Set(settings.recentBooks).size).toBe(10);
  });
});

describe('menus and files', () => {
  it('offers Open Book, recent books and screens as commands to the renderer', () => {
    const sent: AppCommand[] = [];
    const actions = { isMac: false, recentBooks: ['/books/moby.txt'], send: (c: AppCommand) => sent.push(c), chooseBooks: () => sent.push({ type: 'runAnalysis' }), chooseModelFolder: () => undefined, clearRecentBooks: () => undefined };
    const template = menuTemplate(actions);
    const file = template.find((m) => m.label === 'File')!.submenu as { label?: string; submenu?: unknown; click?: () => void }[];
    expect(file.map((i) => i.label).filter(Boolean)).toEqual(['Open Book…', 'Open Recent', 'Add Model Folder…']);
    (file[1].submenu as { click: () => void }[])[0].click();
    const view = template.find((m) => m.label === 'View')!.submenu as { label?: string; click?: () => void }[];
    view.find((i) => i.label === 'Runs')!.click!();
    expect(sent).toEqual([{ type: 'openBook', path: '/books/moby.txt' }, { type: 'show', screen: 'runs' }]);
    expect(menuTemplate({ ...actions, isMac: true })[0]).toEqual({ role: 'appMenu' });
  });

  it('finds shipped assets and tells books from model folders', async () => {
    mkdirSync(join(work.dir, 'assets', 'models', 'demo'), { recursive: true });
    mkdirSync(join(work.dir, 'assets', 'models', 'half-copied'), { recursive: true });
    mkdirSync(join(work.dir, 'assets', 'books'), { recursive: true });
    writeFileSync(join(work.dir, 'assets', 'models', 'demo', 'config.json'), '{}');
    writeFileSync(join(work.dir, 'assets', 'books', 'sample.txt'), 'In the beginning');
    writeFileSync(join(work.dir, 'assets', 'books', 'README'), 'not a book');
    expect(shippedAssets(work.dir)).toEqual({ models: [join(work.dir, 'assets', 'models', 'demo')], books: [join(work.dir, 'assets', 'books', 'sample.txt')] });
    expect(shippedAssets(join(work.dir, 'nowhere'))).toEqual({ models: [], books: [] });
    const paths = [join(work.dir, 'assets', 'books', 'sample.txt'), join(work.dir, 'assets', 'models', 'demo'), join(work.dir, 'assets', 'models', 'half-copied'), join(work.dir, 'gone')];
    expect(await classifyPaths(paths)).toEqual({ books: [paths[0]], models: [paths[1]], rejected: [paths[2], paths[3]] });
  });
});
