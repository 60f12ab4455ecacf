import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { channels } from './api.js';
import { contentSecurityPolicy } from './csp.js';

// No Electron binary here: main runs against a recorded stand-in of the Electron API, and the engine
// process is a fake child answering JSON-RPC on its stdio.
const m = vi.hoisted(() => {
  type Listener = (...args: unknown[]) => unknown;
  const on = (store: Map<string, Listener[]>) => vi.fn((event: string, listener: Listener) => void store.set(event, [...(store.get(event) ?? []), listener]));
  const appEvents = new Map<string, Listener[]>();
  const windows: { options: Record<string, unknown>; events: Map<string, Listener[]>; contents: Map<string, Listener[]>; sent: [string, unknown][]; loaded: string[]; openHandler?: Listener }[] = [];
  const mainFrame = { parent: null, processId: 7, routingId: 1, url: '' };
  class BrowserWindow {
    record: (typeof windows)[number];
    webContents: Record<string, unknown>;
    constructor(options: Record<string, unknown>) {
      this.record = { options, events: new Map(), contents: new Map(), sent: [], loaded: [] };
      windows.push(this.record);
      const record = this.record;
      this.webContents = {
        mainFrame,
        send: (channel: string, payload: unknown) => record.sent.push([channel, payload]),
        on: on(record.contents),
        setWindowOpenHandler: (handler: Listener) => void (record.openHandler = handler),
      };
    }
    on = vi.fn((event: string, listener: (...args: unknown[]) => unknown) => void this.record.events.set(event, [...(this.record.events.get(event) ?? []), listener]));
    once = this.on;
    loadURL = vi.fn(async (url: string) => void (this.record.loaded.push(url), (mainFrame.url = url)));
    maximize = vi.fn();
    isDestroyed = () => false;
    isMinimized = () => false;
    isMaximized = () => false;
    getBounds = () => ({ x: 1, y: 2, width: 1300, height: 850 });
  }
  const handlers = new Map<string, Listener>();
  let headerHook: Listener = () => undefined;
  let permissionHook: Listener = () => undefined;
  const spawned: { args: unknown[]; child: unknown }[] = [];
  return {
    appEvents, windows, mainFrame, handlers, spawned,
    headers: () => headerHook,
    permissions: () => permissionHook,
    electron: {
      app: {
        getAppPath: () => '/opt/ttt-workbench',
        getPath: () => '/tmp/ttt-workbench-main-test-profile',
        requestSingleInstanceLock: () => true,
        on: on(appEvents),
        whenReady: () => Promise.resolve(),
        quit: vi.fn(),
        addRecentDocument: vi.fn(),
        clearRecentDocuments: vi.fn(),
      },
      BrowserWindow,
      ipcMain: { handle: (channel: string, handler: Listener) => void handlers.set(channel, handler), removeHandler: (c: string) => void handlers.delete(c) },
      Menu: { buildFromTemplate: vi.fn((t: unknown) => t), setApplicationMenu: vi.fn() },
      dialog: { showOpenDialog: vi.fn(async () => ({ canceled: true, filePaths: [] })) },
      session: {
        defaultSession: {
          setPermissionRequestHandler: (hook: Listener) => void (permissionHook = hook),
          webRequest: { onHeadersReceived: (hook: Listener) => void (headerHook = hook) },
        },
      },
    },
  };
});

vi.mock('electron', () => ({ default: m.electron, ...m.electron }));
vi.mock('node:child_process', () => ({
  spawn: (...args: unknown[]) => {
    const child = Object.assign(new EventEmitter(), { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough(), pid: 1000 + m.spawned.length, kill: vi.fn() });
    createInterface({ input: child.stdin }).on('line', (line) => {
      const { id, method } = JSON.parse(line) as { id: number; method: string };
      child.stdout.write(`${JSON.stringify({ jsonrpc: '2.0', id, result: method === 'listRuns' ? { runs: [] } : { engine: 'fake' } })}\n`);
    });
    child.stdin.on('finish', () => child.emit('exit', 0, null));
    m.spawned.push({ args, child });
    return child;
  },
}));

const flush = () => new Promise((r) => setTimeout(r, 10));
let window: (typeof m.windows)[number];

beforeAll(async () => {
  await import('./main.js');
  await flush();
  window = m.windows[0];
});

describe('electron main', () => {
  it('opens one sandboxed, isolated window on the built renderer, with the preload', () => {
    expect(m.windows).toHaveLength(1);
    expect(window.options.webPreferences).toMatchObject({ contextIsolation: true, nodeIntegration: false, sandbox: true });
    expect(String((window.options.webPreferences as { preload: string }).preload)).toMatch(/preload\.cjs$/);
    expect(window.loaded[0]).toMatch(/^file:\/\/.*\/renderer\/main_window\/index\.html$/);
  });

  it('starts the engine as `serve --stdio` in its own process, with Electron running as Node', () => {
    const [command, args, options] = m.spawned[0].args as [string, string[], { env: Record<string, string> }];
    expect(command).toBe(process.execPath);
    expect(args.slice(0, 3)).toEqual([join('/opt/ttt-workbench', 'bin', 'ttt-workbench.js'), 'serve', '--stdio']);
    expect(options.env.ELECTRON_RUN_AS_NODE).toBe('1');
  });

  it('applies the CSP, denies permissions, new windows and navigation away from the app', () => {
    const answer = vi.fn();
    m.headers()({ responseHeaders: { 'content-type': ['text/html'] } }, answer);
    expect(answer).toHaveBeenCalledWith({ responseHeaders: { 'content-type': ['text/html'], 'Content-Security-Policy': [contentSecurityPolicy] } });
    const permission = vi.fn();
    m.permissions()({}, 'media', permission);
    expect(permission).toHaveBeenCalledWith(false);
    expect(window.openHandler?.({ url: 'https://example.com' })).toEqual({ action: 'deny' });
    const navigate = window.contents.get('will-navigate')![0];
    const away = { preventDefault: vi.fn() };
    navigate(away, 'https://example.com/');
    expect(away.preventDefault).toHaveBeenCalled();
    const home = { preventDefault: vi.fn() };
    navigate(home, window.loaded[0]);
    expect(home.preventDefault).not.toHaveBeenCalled();
  });

  it('keeps index.html\'s CSP meta tag equal to the header', () => {
    const html = readFileSync(join(import.meta.dirname, '..', 'index.html'), 'utf8');
    expect(/http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)?.[1]).toBe(contentSecurityPolicy);
  });

  it('forwards requests from the app window to the engine and refuses other senders', async () => {
    const request = m.handlers.get(channels.request)!;
    expect(await request({ senderFrame: m.mainFrame }, { method: 'listRuns', params: {} })).toEqual({ ok: true, result: { runs: [] } });
    const iframe = { ...m.mainFrame, parent: m.mainFrame, routingId: 2 };
    await expect(request({ senderFrame: iframe }, { method: 'listRuns', params: {} })).rejects.toThrow(/refused/);
    await expect(request({ senderFrame: { ...m.mainFrame, url: 'https://example.com/' } }, { method: 'listRuns', params: {} })).rejects.toThrow(/refused/);
  });

  it('tells the window when the engine dies and starts a new one', async () => {
    const first = m.spawned[0].child as EventEmitter;
    first.emit('exit', null, 'SIGKILL');
    await flush();
    const states = window.sent.filter(([channel]) => channel === channels.engineState).map(([, state]) => (state as { status: string }).status);
    expect(states.slice(-3)).toEqual(['crashed', 'starting', 'ready']);
    expect(m.spawned).toHaveLength(2);
  });

  it('lets the engine finish before quitting', async () => {
    const quit = m.appEvents.get('before-quit')![0];
    const event = { preventDefault: vi.fn() };
    quit(event);
    expect(event.preventDefault).toHaveBeenCalled();
    await flush();
    expect(m.electron.app.quit).toHaveBeenCalled();
  });
});
