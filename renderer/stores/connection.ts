/** Connection domain: how the page reaches the engine and what the engine reported about itself. */
import { create } from 'zustand';
import type { BackendAvailability, BackendInfo, BackendName } from '../../engine/protocol.js';
import type { ConnectionStatus } from '../transport/types.js';

export interface ConnectionState {
  readonly transport: 'ipc' | 'websocket' | null;
  readonly status: ConnectionStatus;
  /** One line on why the status is what it is (a restart, a lost socket), or null. */
  readonly detail: string | null;
  readonly engine: string | null;
  readonly backend: BackendInfo | null;
  /** Every backend the engine knows, in its order of preference, with whether it can start on its machine. */
  readonly backends: readonly BackendAvailability[];
  /** The backend runs use when none is picked (the engine's own). */
  readonly defaultBackend: BackendName | null;
  /** Times the connection came back after being lost: the UI reloads its lists on each. */
  readonly reconnects: number;
}

const initialState: ConnectionState = {
  transport: null, status: 'connecting', detail: null, engine: null, backend: null, backends: [], defaultBackend: null, reconnects: 0,
};

export const useConnectionStore = create<ConnectionState>()(() => initialState);

export function setTransportKind(transport: ConnectionState['transport']): void {
  useConnectionStore.setState({ transport });
}

export function setConnectionStatus(status: ConnectionStatus, detail: string | null): void {
  useConnectionStore.setState((s) => ({
    status,
    detail,
    reconnects: status === 'connected' && s.status !== 'connected' && s.status !== 'connecting' ? s.reconnects + 1 : s.reconnects,
  }));
}

export function setEngineInfo(engine: string, backend: BackendInfo): void {
  useConnectionStore.setState({ engine, backend });
}

export function setBackends(defaultBackend: BackendName, backends: readonly BackendAvailability[]): void {
  useConnectionStore.setState({ defaultBackend, backends });
}
