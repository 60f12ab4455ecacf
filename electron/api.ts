/**
 * The typed surface between the sandboxed renderer and the main process: the IPC channel allowlist and the
 * shape of the frozen `window.workbench` object the preload exposes. Types only plus one constant table, so
 * the renderer can `import type` it without pulling in Electron.
 */
import type { MethodName, MethodParams, MethodResult, NotificationName, NotificationParams, RpcError } from '../engine/protocol.js';

/** Every channel main listens on or sends to; main refuses any other. */
export const channels = {
  request: 'workbench:request',
  notification: 'workbench:notification',
  engineState: 'workbench:engine-state',
  command: 'workbench:command',
  chooseBooks: 'workbench:choose-books',
  chooseModelFolder: 'workbench:choose-model-folder',
  classifyPaths: 'workbench:classify-paths',
} as const;

export type Channel = (typeof channels)[keyof typeof channels];

/** Errors cross IPC as data: Electron would otherwise flatten them into "Error invoking remote method …". */
export type RequestOutcome<M extends MethodName = MethodName> =
  | { readonly ok: true; readonly result: MethodResult<M> }
  | { readonly ok: false; readonly error: RpcError };

/** `crashed`: the process died and a restart is scheduled; `failed`: it kept dying and main gave up. */
export type EngineState = NotificationParams<'engineState'>;

/** What the native menus and drag-and-drop ask the renderer to do. */
export type AppCommand =
  | { readonly type: 'openBook'; readonly path: string }
  | { readonly type: 'addModel'; readonly dir: string }
  | { readonly type: 'show'; readonly screen: 'library' | 'models' | 'runs' | 'corpus' | 'probes' }
  | { readonly type: 'runAnalysis' };

export interface ClassifiedPaths {
  readonly books: readonly string[];
  readonly models: readonly string[];
  /** Paths that are neither a readable file nor a folder with config.json. */
  readonly rejected: readonly string[];
}

export interface WorkbenchApi {
  request<M extends MethodName>(method: M, params: MethodParams<M>): Promise<RequestOutcome<M>>;
  onNotification(handler: <N extends NotificationName>(method: N, params: NotificationParams<N>) => void): () => void;
  onEngineState(handler: (state: EngineState) => void): () => void;
  onCommand(handler: (command: AppCommand) => void): () => void;
  /** Native open dialogs; an empty list / null when the person cancels. */
  chooseBooks(): Promise<string[]>;
  chooseModelFolder(): Promise<string | null>;
  /** The file-system path of a dropped file (sandboxed renderers no longer see `File.path`). */
  pathForFile(file: File): string;
  classifyPaths(paths: string[]): Promise<ClassifiedPaths>;
}
