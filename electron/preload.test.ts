import { beforeAll, describe, expect, it, vi } from 'vitest';
import { channels, type WorkbenchApi } from './api.js';

// No Electron binary here: the preload runs against a recorded stand-in of the three modules it uses.
const electron = vi.hoisted(() => {
  const listeners = new Map<string, Set<(...args: unknown[]) => void>>();
  return {
    exposed: {} as Record<string, unknown>,
    listeners,
    contextBridge: { exposeInMainWorld: vi.fn((key: string, api: unknown) => void (electron.exposed[key] = api)) },
    ipcRenderer: {
      invoke: vi.fn(async (...args: unknown[]) => ({ echoed: args })),
      on: vi.fn((channel: string, listener: (...args: unknown[]) => void) => {
        if (!listeners.has(channel)) listeners.set(channel, new Set());
        listeners.get(channel)!.add(listener);
      }),
      removeListener: vi.fn((channel: string, listener: (...args: unknown[]) => void) => void listeners.get(channel)?.delete(listener)),
    },
    webUtils: { getPathForFile: vi.fn(() => '/home/me/book.txt') },
  };
});
vi.mock('electron', () => electron);

let api: WorkbenchApi;
beforeAll(async () => {
  await import('./preload.js');
  api = electron.exposed.workbench as WorkbenchApi;
});

describe('preload', () => {
  it('exposes one frozen window.workbench with the typed API and nothing else', () => {
    expect(electron.contextBridge.exposeInMainWorld).toHaveBeenCalledTimes(1);
    expect(Object.keys(electron.exposed)).toEqual(['workbench']);
    expect(Object.isFrozen(api)).toBe(true);
    expect(Object.keys(api).sort()).toEqual(['chooseBooks', 'chooseModelFolder', 'classifyPaths', 'onCommand', 'onEngineState', 'onNotification', 'pathForFile', 'request']);
    expect(Object.values(api).every((v) => typeof v === 'function')).toBe(true);
  });

  it('sends requests and dialogs on allowlisted channels only', async () => {
    await api.request('listRuns', {});
    await api.chooseBooks();
    await api.chooseModelFolder();
    await api.classifyPaths(['/a']);
    const used = electron.ipcRenderer.invoke.mock.calls.map((call) => call[0]);
    expect(used).toEqual([channels.request, channels.chooseBooks, channels.chooseModelFolder, channels.classifyPaths]);
    expect(electron.ipcRenderer.invoke.mock.calls[0][1]).toEqual({ method: 'listRuns', params: {} });
    expect(api.pathForFile({} as File)).toBe('/home/me/book.txt');
  });

  it('hands listeners the payload, never the IPC event, and unsubscribes', () => {
    const received: unknown[] = [];
    const stop = api.onNotification((method, params) => received.push([method, params]));
    const [listener] = electron.listeners.get(channels.notification)!;
    listener({ sender: 'secret' }, { method: 'runFinished', params: { runId: 'r', status: 'finished' } });
    expect(received).toEqual([['runFinished', { runId: 'r', status: 'finished' }]]);
    stop();
    expect(electron.listeners.get(channels.notification)!.size).toBe(0);
    const states: unknown[] = [];
    api.onEngineState((state) => states.push(state))();
    expect(electron.ipcRenderer.removeListener).toHaveBeenCalledWith(channels.engineState, expect.any(Function));
  });
});
