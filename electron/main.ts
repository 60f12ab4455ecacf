/**
 * The Electron main process: one window, native menus and dialogs, the engine in its own process, and the IPC
 * bridge between them. Everything with file or process access lives here, never in the renderer.
 */
import { app, BrowserWindow, dialog, ipcMain, Menu, session, type WebFrameMain } from 'electron';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EngineProcess } from '../engine/server/engine-process.js';
import { type AppCommand, channels, type EngineState } from './api.js';
import { contentSecurityPolicy } from './csp.js';
import { classifyPaths, shippedAssets } from './files.js';
import { isAppUrl, registerIpc } from './ipc.js';
import { menuTemplate } from './menu.js';
import { loadSettings, saveSettings, type Settings, withRecentBook } from './settings.js';

// Defined by Electron Forge's Vite plugin under `npm start`; absent from a plain `npm run build`.
declare const MAIN_WINDOW_VITE_DEV_SERVER_URL: string | undefined;
declare const MAIN_WINDOW_VITE_NAME: string | undefined;

const root = app.getAppPath();
const devServerUrl = typeof MAIN_WINDOW_VITE_DEV_SERVER_URL === 'string' ? MAIN_WINDOW_VITE_DEV_SERVER_URL : undefined;
const rendererName = typeof MAIN_WINDOW_VITE_NAME === 'string' ? MAIN_WINDOW_VITE_NAME : 'main_window';
const appUrl = devServerUrl ?? pathToFileURL(join(__dirname, '..', 'renderer', rendererName, 'index.html')).href;
const settingsFile = join(app.getPath('userData'), 'settings.json');

let settings: Settings = loadSettings(settingsFile);
let window: BrowserWindow | null = null;
let engineState: EngineState = { status: 'starting', message: null, restarts: 0 };

const send = (channel: string, payload: unknown) => window?.webContents.send(channel, payload);
const sendCommand = (command: AppCommand) => send(channels.command, command);

const engine = new EngineProcess({
  spawn: () => {
    const assets = shippedAssets(root);
    const args = [...assets.models.flatMap((m) => ['--model', m]), ...assets.books.flatMap((b) => ['--book', b])];
    // Electron's own binary runs as plain Node here, so the engine needs no separate Node installation.
    return spawn(process.execPath, [join(root, 'bin', 'ttt-workbench.js'), 'serve', '--stdio', ...args], {
      cwd: root, env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, stdio: 'pipe',
    });
  },
  onState: (state) => {
    engineState = state;
    send(channels.engineState, state);
  },
  onNotification: (method, params) => send(channels.notification, { method, params }),
});

function updateSettings(next: Settings): void {
  settings = next;
  try {
    saveSettings(settingsFile, settings);
  } catch {
    // remembering the window size is a courtesy; a read-only profile must not break the app
  }
}

async function chooseBooks(): Promise<string[]> {
  const options = {
    title: 'Open Book', properties: ['openFile', 'multiSelections'] as ('openFile' | 'multiSelections')[],
    filters: [{ name: 'Text', extensions: ['txt', 'md', 'text'] }, { name: 'All Files', extensions: ['*'] }],
  };
  const result = window ? await dialog.showOpenDialog(window, options) : await dialog.showOpenDialog(options);
  return result.canceled ? [] : result.filePaths;
}

async function chooseModelFolder(): Promise<string | null> {
  const options = { title: 'Add Model Folder', properties: ['openDirectory'] as 'openDirectory'[] };
  const result = window ? await dialog.showOpenDialog(window, options) : await dialog.showOpenDialog(options);
  return result.canceled ? null : result.filePaths[0] ?? null;
}

function buildMenu(): void {
  Menu.setApplicationMenu(Menu.buildFromTemplate(menuTemplate({
    isMac: process.platform === 'darwin',
    recentBooks: settings.recentBooks,
    send: sendCommand,
    chooseBooks: () => void chooseBooks().then((paths) => paths.forEach((path) => sendCommand({ type: 'openBook', path }))),
    chooseModelFolder: () => void chooseModelFolder().then((dir) => dir && sendCommand({ type: 'addModel', dir })),
    clearRecentBooks: () => {
      updateSettings({ ...settings, recentBooks: [] });
      app.clearRecentDocuments();
      buildMenu();
    },
  })));
}

function isTrustedSender(frame: WebFrameMain | null): boolean {
  const main = window?.webContents.mainFrame;
  return !!frame && !!main && frame.parent === null && frame.processId === main.processId && frame.routingId === main.routingId && isAppUrl(frame.url, appUrl);
}

function createWindow(): BrowserWindow {
  const bounds = settings.window;
  const win = new BrowserWindow({
    x: bounds.x, y: bounds.y, width: bounds.width, height: bounds.height, minWidth: 900, minHeight: 600,
    show: false, title: 'TTT Workbench', backgroundColor: '#f6f7f9',
    webPreferences: { preload: join(__dirname, 'preload.cjs'), contextIsolation: true, nodeIntegration: false, sandbox: true, spellcheck: false },
  });
  if (bounds.maximized) win.maximize();
  win.once('ready-to-show', () => win.show());
  const remember = () => {
    if (win.isDestroyed() || win.isMinimized()) return;
    const maximized = win.isMaximized();
    updateSettings({ ...settings, window: maximized ? { ...settings.window, maximized } : { ...win.getBounds(), maximized } });
  };
  let debounce: ReturnType<typeof setTimeout> | undefined;
  const later = () => (clearTimeout(debounce), (debounce = setTimeout(remember, 500)));
  win.on('resize', later);
  win.on('move', later);
  win.on('close', remember);
  // The app never leaves its page: dropped files are handled by the renderer, links open nowhere.
  win.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  win.webContents.on('will-navigate', (event, url) => isAppUrl(url, appUrl) || event.preventDefault());
  win.webContents.on('did-finish-load', () => send(channels.engineState, engineState));
  void win.loadURL(appUrl);
  return win;
}

if (!app.requestSingleInstanceLock()) app.quit();

app.on('second-instance', () => {
  if (window?.isMinimized()) window.restore();
  window?.focus();
});
app.on('open-file', (event, path) => {
  event.preventDefault();
  sendCommand({ type: 'openBook', path });
});

void app.whenReady().then(() => {
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [contentSecurityPolicy] } });
  });
  registerIpc(ipcMain, {
    call: (method, params) => engine.call(method, params as never),
    isTrustedSender,
    chooseBooks,
    chooseModelFolder,
    classifyPaths,
    onBookOpened: (path) => {
      updateSettings(withRecentBook(settings, path));
      app.addRecentDocument(path);
      buildMenu();
    },
  });
  buildMenu();
  engine.start();
  window = createWindow();
  window.on('closed', () => (window = null));
  app.on('activate', () => {
    if (!window) {
      window = createWindow();
      window.on('closed', () => (window = null));
    }
  });
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});

let quitting = false;
app.on('before-quit', (event) => {
  if (quitting) return;
  // Let the engine cancel and close the current run, so it stays readable, before the app exits.
  event.preventDefault();
  quitting = true;
  void engine.stop().finally(() => app.quit());
});
