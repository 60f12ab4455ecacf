/** A renderer transport for unit tests of the commands: answers from a table, records requests, plays notifications. */
import type { MethodName, NotificationHandler } from '../../engine/protocol.js';
import type { ConnectionStatus, EngineTransport } from '../../renderer/transport/types.js';

/** A transport answering from a table, recording requests; `notify` plays engine notifications. */
export function fakeTransport(answers: Partial<Record<MethodName, (params: never) => unknown>>) {
  const calls: { method: MethodName; params: unknown }[] = [];
  let notify: NotificationHandler = () => undefined;
  let status: (s: ConnectionStatus, d: string | null) => void = () => undefined;
  const transport: EngineTransport = {
    kind: 'websocket',
    async request(method, params) {
      calls.push({ method, params });
      const answer = answers[method];
      if (!answer) throw new Error(`${method} failed`);
      return answer(params as never) as never;
    },
    onNotification: (handler) => ((notify = handler), () => undefined),
    onStatus: (handler) => ((status = handler), handler('connecting', null), () => undefined),
    close: () => undefined,
  };
  return { transport, calls, setStatus: (s: ConnectionStatus) => status(s, null), notify: (...args: Parameters<NotificationHandler>) => notify(...args) };
}
