/**
 * Web mode's engine, shaped like the desktop app's: every method of protocol.ts forwarded to the engine process
 * (`ttt-workbench serve --stdio`) that an EngineProcess supervises, its notifications sent to every connection,
 * and the process's own state as `engineState` (each connection hears the current one when it subscribes). The
 * server that holds the pages' sockets outlives an engine crash; the supervisor restarts the engine.
 */
import { type MethodName, type MethodParams, methods } from '../protocol.js';
import { EngineProcess, type EngineProcessOptions, type EngineState, type SpawnEngine } from './engine-process.js';
import type { HandlerContext, Handlers, RpcEndpoint } from './rpc-server.js';

export interface EngineBridge extends RpcEndpoint {
  /** The engine process's state now. */
  readonly state: EngineState;
  /** The engine process's id while one runs. */
  readonly pid: number | null;
  /** Ends the engine process (it cancels and flushes its run first) and does not restart it. */
  stop(): Promise<void>;
}

export type EngineBridgeOptions = Pick<EngineProcessOptions, 'restartDelaysMs' | 'stableAfterMs'> & {
  readonly onState?: (state: EngineState) => void;
};

export function bridgeEngineProcess(spawn: SpawnEngine, options: EngineBridgeOptions = {}): EngineBridge {
  const subscribers = new Set<HandlerContext['notify']>();
  let state: EngineState = { status: 'starting', message: null, restarts: 0 };
  const engine = new EngineProcess({
    spawn,
    restartDelaysMs: options.restartDelaysMs,
    stableAfterMs: options.stableAfterMs,
    onState: (next) => {
      state = next;
      options.onState?.(next);
      for (const notify of subscribers) notify('engineState', next);
    },
    onNotification: (method, params) => {
      for (const notify of subscribers) notify(method, params);
    },
  });
  const forward = (name: MethodName) => (params: MethodParams<typeof name>) => engine.call(name, params);
  const handlers = Object.fromEntries(Object.keys(methods).map((name) => [name, forward(name as MethodName)])) as unknown as Handlers;
  engine.start();
  return {
    handlers,
    subscribe(notify) {
      subscribers.add(notify);
      notify('engineState', state);
      return () => void subscribers.delete(notify);
    },
    get state() {
      return state;
    },
    get pid() {
      return engine.pid;
    },
    stop: () => engine.stop(),
  };
}
