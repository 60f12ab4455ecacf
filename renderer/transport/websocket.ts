/**
 * Web mode: JSON-RPC frames over a WebSocket to the engine on 127.0.0.1, reconnecting when the socket drops
 * (the engine keeps runs on disk, so a reconnected page lists the same runs). `npm run web` runs the engine as a
 * child process and says how it is (`engineState`): an engine that died and is restarting reads as `restarting`,
 * as in the desktop app, while the socket stays open.
 */
import { EngineError, errorCodes, type NotificationParams, RpcClient } from '../../engine/protocol.js';
import type { ConnectionStatus, EngineTransport } from './types.js';

/** The part of the WebSocket API used here; the browser's and the `ws` package's both fit. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  send(data: string): void;
  close(): void;
}

export type SocketFactory = (url: string) => SocketLike;

export interface WebSocketTransportOptions {
  readonly createSocket?: SocketFactory;
  /** Waits between reconnection attempts; the last one repeats. */
  readonly retryDelaysMs?: readonly number[];
}

const OPEN = 1;

/** The engine's socket URL for a page served by `npm run web`: same host, `/rpc`, the page's `token`. */
export function engineSocketUrl(location: { host: string; search: string }): string | null {
  const token = new URLSearchParams(location.search).get('token');
  return token ? `ws://${location.host}/rpc?token=${encodeURIComponent(token)}` : null;
}

export function createWebSocketTransport(url: string, options: WebSocketTransportOptions = {}): EngineTransport {
  const createSocket = options.createSocket ?? ((u: string) => new WebSocket(u) as unknown as SocketLike);
  const delays = options.retryDelaysMs ?? [250, 1000, 2000, 5000];
  const statusListeners = new Set<(status: ConnectionStatus, detail: string | null) => void>();
  let status: ConnectionStatus = 'connecting';
  let detail: string | null = null;
  let socket: SocketLike | null = null;
  let attempts = 0;
  let closed = false;
  let retry: ReturnType<typeof setTimeout> | undefined;

  const client = new RpcClient((frame) => {
    if (!socket || socket.readyState !== OPEN) throw new EngineError(errorCodes.internalError, 'not connected to the engine');
    socket.send(frame);
  });
  const setStatus = (next: ConnectionStatus, why: string | null) => {
    status = next;
    detail = why;
    for (const listener of statusListeners) listener(status, detail);
  };
  // the engine process behind the socket (web mode's server supervises it)
  client.onNotification((method, params) => {
    if (method !== 'engineState' || !socket) return;
    const state = params as NotificationParams<'engineState'>;
    if (state.status === 'ready') setStatus('connected', null);
    else if (state.status === 'failed') setStatus('disconnected', state.message);
    else if (state.status === 'crashed' || state.restarts > 0) setStatus('restarting', state.message);
    else setStatus('connecting', null);
  });
  const open = () => {
    const ws = createSocket(url);
    socket = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      attempts = 0;
      setStatus('connected', null);
    };
    ws.onmessage = (event) => client.receive(String(event.data));
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      client.failAll('the connection to the engine closed');
      if (closed) return;
      const why = opened ? 'lost the connection to the engine; reconnecting' : 'cannot reach the engine; retrying';
      setStatus('reconnecting', why);
      retry = setTimeout(open, delays[Math.min(attempts++, delays.length - 1)]);
    };
  };
  open();

  return {
    kind: 'websocket',
    request: (method, params) => client.call(method, params),
    onNotification: (handler) => client.onNotification(handler),
    onStatus(handler) {
      statusListeners.add(handler);
      handler(status, detail);
      return () => void statusListeners.delete(handler);
    },
    close() {
      closed = true;
      clearTimeout(retry);
      const last = socket;
      socket = null;
      last?.close();
      client.failAll('the connection to the engine was closed');
      setStatus('disconnected', null);
    },
  };
}
