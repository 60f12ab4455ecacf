/**
 * A JSON-RPC 2.0 dispatcher over the `methods` table of protocol.ts: parses frames, validates params with zod,
 * calls plain async handlers `(params, {signal, notify})`, and turns every failure into a JSON-RPC error with
 * a one-line message. Transports (stdio, WebSocket, Electron IPC) only move text frames in and out.
 *
 * Any frame gets an answer or nothing, never a crash: method names are looked up as own properties (a method
 * named "toString" is unknown, not Object.prototype's), batches are refused, and `handle` never rejects.
 */
import { WorkbenchError } from '../core/errors.js';
import {
  EngineError, errorCodes, type MethodName, type MethodParams, type MethodResult, methods, type NotificationName, type NotificationParams,
  RpcRequest, type RpcResponse,
} from '../protocol.js';

export interface HandlerContext {
  readonly signal: AbortSignal;
  readonly notify: <N extends NotificationName>(method: N, params: NotificationParams<N>) => void;
}

export type Handlers = { [M in MethodName]: (params: MethodParams<M>, context: HandlerContext) => Promise<MethodResult<M>> };

/**
 * What a transport serves: the handlers, and notifications for every connection. The engine's own service is one;
 * web mode's bridge to the engine process (engine-bridge.ts) is another.
 */
export interface RpcEndpoint {
  readonly handlers: Handlers;
  subscribe(notify: HandlerContext['notify']): () => void;
}

export interface RpcServer {
  /** Handles one incoming frame; resolves to the response frame, or null for notifications from the client. */
  handle(frame: string): Promise<string | null>;
  /** Cancels what is in flight for this connection (the connection closed). */
  close(): void;
}

const reply = (id: string | number | null, body: { result: unknown } | { error: { code: number; message: string } }): string =>
  JSON.stringify({ jsonrpc: '2.0', id, ...body } satisfies RpcResponse);

/** The largest frame a transport accepts (a JSON-RPC request is small; a run's data goes the other way). */
export const maxFrameBytes = 16 * 1024 * 1024;

/** The answer to a frame over `maxFrameBytes`, which is never parsed. */
export const frameTooLarge = (): string =>
  reply(null, { error: { code: errorCodes.invalidRequest, message: `invalid request: the frame is over ${maxFrameBytes / 1024 / 1024} MiB` } });

/** One line of any thrown value, never a stack. */
function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message : typeof error === 'string' ? error : 'unknown error';
  return (text ?? 'unknown error').split('\n')[0];
}

/** The id of a frame that is not a valid request, when it has a usable one, so the client can match the error. */
function idOf(json: unknown): string | number | null {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return null;
  const id = (json as { id?: unknown }).id;
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) ? id : null;
}

export function createRpcServer(handlers: Handlers, notify: HandlerContext['notify']): RpcServer {
  const connection = new AbortController();

  async function dispatch(frame: string): Promise<string | null> {
    let json: unknown;
    try {
      json = JSON.parse(frame);
    } catch {
      return reply(null, { error: { code: errorCodes.parseError, message: 'parse error: the frame is not JSON' } });
    }
    if (Array.isArray(json)) return reply(null, { error: { code: errorCodes.invalidRequest, message: 'invalid request: batches (arrays) are not supported; send one request per frame' } });
    const request = RpcRequest.safeParse(json);
    if (!request.success) return reply(idOf(json), { error: { code: errorCodes.invalidRequest, message: 'invalid request: expected {"jsonrpc": "2.0", "method": ..., "id": ...}' } });
    const { id, method, params } = request.data;
    const respond = (body: Parameters<typeof reply>[1]) => (id === undefined ? null : reply(id, body));
    // own properties only: "toString", "constructor" or "__proto__" are not methods
    if (!Object.hasOwn(methods, method) || !Object.hasOwn(handlers, method)) {
      return respond({ error: { code: errorCodes.methodNotFound, message: `unknown method "${method.slice(0, 100)}"` } });
    }
    const name = method as MethodName;
    const parsed = methods[name].params.safeParse(params ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return respond({ error: { code: errorCodes.invalidParams, message: `invalid params for ${name}: ${issue.path.join('.') || '(params)'} ${issue.message}` } });
    }
    try {
      const handler = handlers[name] as (p: unknown, c: HandlerContext) => Promise<unknown>;
      const result = await handler(parsed.data, { signal: connection.signal, notify });
      return respond({ result });
    } catch (error) {
      if (error instanceof WorkbenchError) return respond({ error: { code: errorCodes.requestFailed, message: messageOf(error) } });
      // an answer relayed from another engine (web mode's engine process) keeps its code and line
      if (error instanceof EngineError) return respond({ error: { code: error.code, message: messageOf(error) } });
      return respond({ error: { code: errorCodes.internalError, message: `internal error: ${messageOf(error)}` } });
    }
  }

  return {
    async handle(frame) {
      try {
        return await dispatch(frame);
      } catch (error) {
        // a result that cannot be sent (not serialisable) is an error for that request, not for the engine
        return reply(idOf((() => {
          try {
            return JSON.parse(frame) as unknown;
          } catch {
            return null;
          }
        })()), { error: { code: errorCodes.internalError, message: `internal error: ${messageOf(error)}` } });
      }
    },
    close() {
      connection.abort();
    },
  };
}
