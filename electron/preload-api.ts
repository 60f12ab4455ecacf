/**
 * Builds the object the preload exposes as `window.workbench`. Kept apart from preload.ts so tests can hand it
 * fake `ipcRenderer`/`webUtils` objects. Listeners never receive the IPC event itself (it carries `sender`).
 */
import type { IpcRenderer, IpcRendererEvent, WebUtils } from 'electron';
import { type AppCommand, channels, type EngineState, type WorkbenchApi } from './api.js';
import type { NotificationName, NotificationParams } from '../engine/protocol.js';

type Ipc = Pick<IpcRenderer, 'invoke' | 'on' | 'removeListener'>;

export function createWorkbenchApi(ipc: Ipc, webUtils: Pick<WebUtils, 'getPathForFile'>): WorkbenchApi {
  const subscribe = <T>(channel: string, handler: (payload: T) => void): (() => void) => {
    const listener = (_event: IpcRendererEvent, payload: T) => handler(payload);
    ipc.on(channel, listener);
    return () => void ipc.removeListener(channel, listener);
  };
  const api: WorkbenchApi = {
    request: (method, params) => ipc.invoke(channels.request, { method, params }),
    onNotification: (handler) =>
      subscribe<{ method: NotificationName; params: NotificationParams<NotificationName> }>(channels.notification, (n) => handler(n.method, n.params)),
    onEngineState: (handler) => subscribe<EngineState>(channels.engineState, handler),
    onCommand: (handler) => subscribe<AppCommand>(channels.command, handler),
    chooseBooks: () => ipc.invoke(channels.chooseBooks),
    chooseModelFolder: () => ipc.invoke(channels.chooseModelFolder),
    pathForFile: (file) => webUtils.getPathForFile(file),
    classifyPaths: (paths) => ipc.invoke(channels.classifyPaths, paths),
  };
  return Object.freeze(api);
}
