/**
 * A JSON-RPC 2.0 dispatcher over the `methods` table of protocol.ts: parses frames, validates params with zod,
 * calls plain async handlers `(params, {signal, notify})`, and turns every failure into a JSON-RPC error with
 * a one-line message. Transports (stdio, WebSocket, Electron IPC) only move text frames in and out.
 */
import { WorkbenchError } from '../core/errors.js';
import {
  errorCodes, type MethodName, type MethodParams, type MethodResult, methods, type NotificationName, type NotificationParams,
  RpcRequest, type RpcResponse,
} from '../protocol.js';

export interface HandlerContext {
  readonly signal: AbortSignal;
  readonly notify: <N extends NotificationName>(method: N, params: NotificationParams<N>) => void;
}

export type Handlers = { [M in MethodName]: (params: MethodParams<M>, context: HandlerContext) => Promise<MethodResult<M>> };

export interface RpcServer {
  /** Handles one incoming frame; resolves to the response frame, or null for notifications from the client. */
  handle(frame: string): Promise<string | null>;
  /** Cancels what is in flight for this connection (the connection closed). */
  close(): void;
}

const reply = (id: string | number | null, body: { result: unknown } | { error: { code: number; message: string } }): string =>
  JSON.stringify({ jsonrpc: '2.0', id, ...body } satisfies RpcResponse);

export function createRpcServer(handlers: Handlers, notify: HandlerContext['notify']): RpcServer {
  const connection = new AbortController();
  return {
    async handle(frame) {
      let json: unknown;
      try {
        json = JSON.parse(frame);
      } catch {
        return reply(null, { error: { code: errorCodes.parseError, message: 'parse error: the frame is not JSON' } });
      }
      const request = RpcRequest.safeParse(json);
      if (!request.success) return reply(null, { error: { code: errorCodes.invalidRequest, message: 'invalid request: expected {"jsonrpc": "2.0", "method": ..., "id": ...}' } });
      const { id, method, params } = request.data;
      const respond = (body: Parameters<typeof reply>[1]) => (id === undefined ? null : reply(id, body));
      if (!(method in methods)) return respond({ error: { code: errorCodes.methodNotFound, message: `unknown method "${method}"` } });
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
        if (error instanceof WorkbenchError) return respond({ error: { code: errorCodes.requestFailed, message: error.message } });
        return respond({ error: { code: errorCodes.internalError, message: `internal error: ${(error as Error).message ?? String(error)}` } });
      }
    },
    close() {
      connection.abort();
    },
  };
}
