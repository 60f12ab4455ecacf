/**
 * How the renderer reaches the engine: one interface, two implementations (Electron IPC through the preload's
 * `window.workbench`, and a WebSocket in web mode). Requests and notifications are the protocol's, typed.
 */
import type { MethodName, MethodParams, MethodResult, NotificationHandler } from '../../engine/protocol.js';

/** `restarting`: the desktop engine process died and main is starting a new one; `reconnecting`: the socket dropped. */
export type ConnectionStatus = 'connecting' | 'connected' | 'reconnecting' | 'restarting' | 'disconnected';

export interface EngineTransport {
  readonly kind: 'ipc' | 'websocket';
  request<M extends MethodName>(method: M, params: MethodParams<M>): Promise<MethodResult<M>>;
  onNotification(handler: NotificationHandler): () => void;
  /** Called at once with the current status, then on every change; `detail` is a one-line reason. */
  onStatus(handler: (status: ConnectionStatus, detail: string | null) => void): () => void;
  close(): void;
}
