/** Picks the transport for where the page runs: inside the desktop app (preload present) or in a browser. */
import type { WorkbenchApi } from '../../electron/api.js';
import { createIpcTransport } from './ipc.js';
import type { EngineTransport } from './types.js';
import { createWebSocketTransport, engineSocketUrl } from './websocket.js';

export type { ConnectionStatus, EngineTransport } from './types.js';

export interface PageContext {
  readonly workbench?: WorkbenchApi;
  readonly location: { host: string; search: string };
}

export function detectTransport(page: PageContext): EngineTransport | { error: string } {
  if (page.workbench) return createIpcTransport(page.workbench);
  const url = engineSocketUrl(page.location);
  if (!url) return { error: 'This page needs its access token: open the address printed by "npm run web".' };
  return createWebSocketTransport(url);
}
