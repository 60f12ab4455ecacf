/** Desktop: requests through the preload's `window.workbench`; main forwards them to the engine process. */
import type { EngineState, WorkbenchApi } from '../../electron/api.js';
import { EngineError } from '../../engine/protocol.js';
import type { ConnectionStatus, EngineTransport } from './types.js';

const statusOf: Record<EngineState['status'], ConnectionStatus> = {
  starting: 'connecting', ready: 'connected', crashed: 'restarting', failed: 'disconnected',
};

export function createIpcTransport(api: WorkbenchApi): EngineTransport {
  let last: EngineState = { status: 'starting', message: null, restarts: 0 };
  const listeners = new Set<(status: ConnectionStatus, detail: string | null) => void>();
  const update = (state: EngineState) => {
    last = state;
    for (const listener of listeners) listener(statusOf[state.status], state.message);
  };
  const stop = api.onEngineState(update);
  // Main announces the engine's state on page load; should that message come before this page listened, the
  // first answered request proves the engine is up (main holds requests until it is).
  void api.request('info', {}).then((outcome) => outcome.ok && last.status === 'starting' && update({ ...last, status: 'ready' }), () => undefined);
  return {
    kind: 'ipc',
    async request(method, params) {
      const outcome = await api.request(method, params);
      if (!outcome.ok) throw new EngineError(outcome.error.code, outcome.error.message, outcome.error.data);
      return outcome.result;
    },
    onNotification: (handler) => api.onNotification(handler),
    onStatus(handler) {
      listeners.add(handler);
      handler(statusOf[last.status], last.message);
      return () => void listeners.delete(handler);
    },
    close: () => stop(),
  };
}
