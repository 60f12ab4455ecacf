/** Runs in the sandboxed renderer before the page: exposes `window.workbench` and nothing else. */
import { contextBridge, ipcRenderer, webUtils } from 'electron';
import { createWorkbenchApi } from './preload-api.js';

contextBridge.exposeInMainWorld('workbench', createWorkbenchApi(ipcRenderer, webUtils));
