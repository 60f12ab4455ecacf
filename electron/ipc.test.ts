import { describe, expect, it, vi } from 'vitest';
import type { WebFrameMain } from 'electron';
import { EngineError, errorCodes } from '../engine/protocol.js';
import { channels } from './api.js';
import { type IpcDeps, isAppUrl, registerIpc } from './ipc.js';

type Handler = (event: { senderFrame: WebFrameMain | null }, ...args: unknown[]) => Promise<unknown>;

const trusted = { url: 'file:///app/.vite/renderer/main_window/index.html' } as WebFrameMain;
const stranger = { url: 'https://example.com/' } as WebFrameMain;

function setup(overrides: Partial<IpcDeps> = {}) {
  const handlers = new Map<string, Handler>();
  const ipcMain = { handle: vi.fn((channel: string, h: Handler) => void handlers.set(channel, h)), removeHandler: vi.fn((c: string) => void handlers.delete(c)) };
  const deps: IpcDeps = {
    call: vi.fn(async (method: string) => (method === 'openBook' ? { book: { path: '/books/a.txt' } } : { runs: [] })),
    isTrustedSender: (frame) => frame === trusted,
    chooseBooks: async () => ['/books/a.txt'],
    chooseModelFolder: async () => null,
    classifyPaths: vi.fn(async (paths: string[]) => ({ books: paths, models: [], rejected: [] })),
    onBookOpened: vi.fn(),
    ...overrides,
  };
  const dispose = registerIpc(ipcMain as never, deps);
  const invoke = (channel: string, frame: WebFrameMain | null, ...args: unknown[]) => handlers.get(channel)!({ senderFrame: frame }, ...args);
  return { handlers, deps, invoke, dispose, ipcMain };
}

describe('main-process IPC', () => {
  it('handles exactly the allowlisted invoke channels and removes them on dispose', () => {
    const { handlers, dispose } = setup();
    expect([...handlers.keys()].sort()).toEqual([channels.chooseBooks, channels.chooseModelFolder, channels.classifyPaths, channels.request].sort());
    dispose();
    expect(handlers.size).toBe(0);
  });

  it('refuses anything not sent by the app window', async () => {
    const { invoke, deps } = setup();
    await expect(invoke(channels.request, stranger, { method: 'listRuns', params: {} })).rejects.toThrow(/refused/);
    await expect(invoke(channels.chooseBooks, null)).rejects.toThrow(/refused/);
    expect(deps.call).not.toHaveBeenCalled();
  });

  it('forwards valid requests and answers bad ones with protocol errors', async () => {
    const { invoke, deps } = setup();
    expect(await invoke(channels.request, trusted, { method: 'listRuns', params: {} })).toEqual({ ok: true, result: { runs: [] } });
    expect(await invoke(channels.request, trusted, { method: 'constructor', params: {} })).toMatchObject({ ok: false, error: { code: errorCodes.methodNotFound } });
    expect(await invoke(channels.request, trusted, { method: 'startAnalysis', params: { book: 'a', models: [] } }))
      .toMatchObject({ ok: false, error: { code: errorCodes.invalidParams, message: expect.stringMatching(/^invalid params for startAnalysis: models/) } });
    expect(deps.call).toHaveBeenCalledTimes(1);
    await invoke(channels.request, trusted, { method: 'openBook', params: { path: '/books/a.txt' } });
    expect(deps.onBookOpened).toHaveBeenCalledWith('/books/a.txt');
  });

  it('passes engine errors through as data', async () => {
    const { invoke } = setup({ call: async () => Promise.reject(new EngineError(errorCodes.requestFailed, 'a.txt: no such file')) });
    expect(await invoke(channels.request, trusted, { method: 'listBooks', params: {} })).toEqual({ ok: false, error: { code: errorCodes.requestFailed, message: 'a.txt: no such file' } });
  });

  it('keeps only string paths for classification', async () => {
    const { invoke, deps } = setup();
    await invoke(channels.classifyPaths, trusted, ['/a', 3, null, '/b']);
    expect(deps.classifyPaths).toHaveBeenCalledWith(['/a', '/b']);
  });

  it('recognises the app page: the packaged file or the dev server origin', () => {
    const file = 'file:///app/.vite/renderer/main_window/index.html';
    expect(isAppUrl(`${file}#runs`, file)).toBe(true);
    expect(isAppUrl('file:///etc/passwd', file)).toBe(false);
    expect(isAppUrl('http://localhost:5173/renderer/main.tsx', 'http://localhost:5173')).toBe(true);
    expect(isAppUrl('http://localhost:5174/', 'http://localhost:5173')).toBe(false);
    expect(isAppUrl('not a url', file)).toBe(false);
  });
});
