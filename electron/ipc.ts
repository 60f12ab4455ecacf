/**
 * Main-process IPC handlers. Every handler first checks that the channel is on the allowlist and that the
 * message comes from our window's main frame showing our own page; then requests are checked against the
 * protocol's `methods` table before they reach the engine process.
 */
import type { IpcMain, IpcMainInvokeEvent, WebFrameMain } from 'electron';
import { errorCodes, EngineError, type MethodName, methods } from '../engine/protocol.js';
import { type Channel, channels, type ClassifiedPaths, type RequestOutcome } from './api.js';

export interface IpcDeps {
  /** Forwards one request to the engine process. */
  call(method: MethodName, params: unknown): Promise<unknown>;
  /** True only for the main frame of the app window, at the app's own URL. */
  isTrustedSender(frame: WebFrameMain | null): boolean;
  chooseBooks(): Promise<string[]>;
  chooseModelFolder(): Promise<string | null>;
  classifyPaths(paths: string[]): Promise<ClassifiedPaths>;
  /** A book opened successfully (for the recent-books list). */
  onBookOpened?(path: string): void;
}

const allowed = new Set<string>(Object.values(channels));

/** The app's page is `file://…/index.html` when packaged or the dev server's origin under `npm start`. */
export function isAppUrl(url: string, appUrl: string): boolean {
  try {
    const page = new URL(url);
    const app = new URL(appUrl);
    if (app.protocol === 'file:') return page.protocol === 'file:' && page.pathname === app.pathname;
    return page.origin === app.origin;
  } catch {
    return false;
  }
}

const failure = (code: number, message: string): RequestOutcome => ({ ok: false, error: { code, message } });

export async function handleRequest(deps: IpcDeps, message: unknown): Promise<RequestOutcome> {
  const { method, params } = (message ?? {}) as { method?: unknown; params?: unknown };
  if (typeof method !== 'string' || !Object.hasOwn(methods, method)) {
    return failure(errorCodes.methodNotFound, `unknown method "${String(method)}"`);
  }
  const name = method as MethodName;
  const parsed = methods[name].params.safeParse(params ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return failure(errorCodes.invalidParams, `invalid params for ${name}: ${issue.path.join('.') || '(params)'} ${issue.message}`);
  }
  try {
    const result = await deps.call(name, parsed.data);
    if (name === 'openBook') deps.onBookOpened?.((result as { book: { path: string } }).book.path);
    return { ok: true, result } as RequestOutcome;
  } catch (error) {
    if (error instanceof EngineError) return failure(error.code, error.message);
    return failure(errorCodes.internalError, (error as Error).message ?? String(error));
  }
}

type Handler = (...args: unknown[]) => unknown;

/** Registers the handlers; returns a function removing them (window closed, tests). */
export function registerIpc(ipcMain: Pick<IpcMain, 'handle' | 'removeHandler'>, deps: IpcDeps): () => void {
  const registered: Channel[] = [];
  const handle = (channel: Channel, handler: Handler) => {
    if (!allowed.has(channel)) throw new Error(`channel ${channel} is not on the allowlist`);
    ipcMain.handle(channel, async (event: IpcMainInvokeEvent, ...args: unknown[]) => {
      if (!deps.isTrustedSender(event.senderFrame)) throw new Error(`refused ${channel}: not sent by the app window`);
      return handler(...args);
    });
    registered.push(channel);
  };
  handle(channels.request, (message) => handleRequest(deps, message));
  handle(channels.chooseBooks, () => deps.chooseBooks());
  handle(channels.chooseModelFolder, () => deps.chooseModelFolder());
  handle(channels.classifyPaths, (paths) => {
    const list = Array.isArray(paths) ? paths.filter((p): p is string => typeof p === 'string').slice(0, 100) : [];
    return deps.classifyPaths(list);
  });
  return () => registered.forEach((channel) => ipcMain.removeHandler(channel));
}
