/** The one engine transport of the page, and a request helper that turns failures into the error banner. */
import type { MethodName, MethodParams, MethodResult } from '../../engine/protocol.js';
import { setPending, showBanner } from '../stores/view.js';
import type { EngineTransport } from '../transport/types.js';

let transport: EngineTransport | null = null;

export function useTransport(next: EngineTransport | null): void {
  transport?.close();
  transport = next;
}

export function currentTransport(): EngineTransport | null {
  return transport;
}

export function request<M extends MethodName>(method: M, params: MethodParams<M>): Promise<MethodResult<M>> {
  if (!transport) return Promise.reject(new Error('not connected to the engine'));
  return transport.request(method, params);
}

/** Runs `work`, marking `name` pending meanwhile; a failure shows its one-line message and resolves to null. */
export async function attempt<T>(name: string, work: () => Promise<T>): Promise<T | null> {
  setPending(name, true);
  try {
    return await work();
  } catch (error) {
    showBanner((error as Error).message || String(error));
    return null;
  } finally {
    setPending(name, false);
  }
}
