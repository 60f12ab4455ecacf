import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { EngineState, WorkbenchApi } from '../../electron/api.js';
import { selectBackend } from '../../engine/core/backend.js';
import { EngineError, errorCodes, type NotificationName } from '../../engine/protocol.js';
import { EngineService } from '../../engine/server/engine-service.js';
import { serveWebSocket, type WebSocketEngine } from '../../engine/server/websocket-transport.js';
import { sampleText, tempDir, writeTinyModel } from '../helpers/tiny-models.js';
import { detectTransport } from '../../renderer/transport/index.js';
import { createIpcTransport } from '../../renderer/transport/ipc.js';
import type { ConnectionStatus } from '../../renderer/transport/types.js';
import { createWebSocketTransport, engineSocketUrl, type SocketLike } from '../../renderer/transport/websocket.js';
import { until } from '../helpers/until.js';

const work = tempDir('ttt-transport-');
let service: EngineService;
let model: string;
const book = join(work.dir, 'book.txt');
const createSocket = (url: string) => new WebSocket(url) as unknown as SocketLike;

beforeAll(async () => {
  model = writeTinyModel(work.dir, 'ttt-linear');
  writeFileSync(book, sampleText.repeat(4));
  service = new EngineService({ dataDir: join(work.dir, 'data'), builtinModels: [model], builtinBooks: [book], backend: await selectBackend('wasm') });
});
afterAll(() => work.cleanup());

describe('WebSocket transport', () => {
  it('finds the socket URL from the page address', () => {
    expect(engineSocketUrl({ host: '127.0.0.1:5000', search: '?token=abc' })).toBe('ws://127.0.0.1:5000/rpc?token=abc');
    expect(engineSocketUrl({ host: '127.0.0.1:5000', search: '' })).toBeNull();
    expect(detectTransport({ location: { host: 'x', search: '' } })).toEqual({ error: expect.stringMatching(/npm run web/) });
  });

  it('calls methods, delivers notifications, and reconnects after the engine comes back', async () => {
    let engine: WebSocketEngine = await serveWebSocket(service);
    const transport = createWebSocketTransport(engine.wsUrl, { createSocket, retryDelaysMs: [50] });
    const statuses: ConnectionStatus[] = [];
    transport.onStatus((status) => statuses.push(status));
    const events: NotificationName[] = [];
    transport.onNotification((method) => events.push(method));
    try {
      await until(() => statuses.includes('connected'), 30_000);
      expect((await transport.request('listModels', {})).models.map((m) => m.name)).toEqual(['ttt-linear']);
      await expect(transport.request('getRun', { runId: 'nope' })).rejects.toMatchObject({ name: 'EngineError', code: errorCodes.requestFailed });
      const { runId } = await transport.request('startAnalysis', { book, models: [model], maxTokens: 64 });
      await until(() => events.includes('runFinished'), 30_000);
      expect(events).toContain('runProgress');
      expect(events).toContain('runData');

      // the engine goes away and comes back on the same port and token
      const { port, token } = engine;
      await engine.close();
      await until(() => statuses.at(-1) === 'reconnecting', 30_000);
      await expect(transport.request('info', {})).rejects.toThrow(/not connected/);
      engine = await serveWebSocket(service, { port, token });
      await until(() => statuses.at(-1) === 'connected', 30_000);
      expect((await transport.request('listRuns', {})).runs.map((r) => r.id)).toContain(runId);
      expect(statuses).toEqual(['connecting', 'connected', 'reconnecting', ...statuses.slice(3, -1).map(() => 'reconnecting'), 'connected']);
    } finally {
      transport.close();
      await engine.close();
    }
    expect(statuses.at(-1)).toBe('disconnected');
  });

  it('reads the engine process behind the socket from engineState: restarting while it restarts, connected once ready', () => {
    const socket: SocketLike & { sent: string[] } = { readyState: 1, onopen: null, onclose: null, onmessage: null, sent: [], send: (f) => void socket.sent.push(f), close: () => undefined };
    const transport = createWebSocketTransport('ws://x/rpc?token=t', { createSocket: () => socket });
    const seen: [ConnectionStatus, string | null][] = [];
    transport.onStatus((status, detail) => seen.push([status, detail]));
    const state = (status: EngineState['status'], restarts: number, message: string | null = null) =>
      socket.onmessage!({ data: JSON.stringify({ jsonrpc: '2.0', method: 'engineState', params: { status, message, restarts } }) });
    socket.onopen!(null);
    state('starting', 0);
    state('ready', 0);
    state('crashed', 0, 'the engine stopped (SIGKILL); restarting it');
    state('starting', 1);
    state('ready', 1);
    state('failed', 4, 'the engine stopped (exit code 1); it kept stopping, so it was not restarted');
    expect(seen).toEqual([
      ['connecting', null], ['connected', null], ['connecting', null], ['connected', null],
      ['restarting', 'the engine stopped (SIGKILL); restarting it'], ['restarting', null], ['connected', null],
      ['disconnected', 'the engine stopped (exit code 1); it kept stopping, so it was not restarted'],
    ]);
    transport.close();
  });
});

describe('IPC transport', () => {
  function fakeApi(answer: WorkbenchApi['request']) {
    let stateListener: (state: EngineState) => void = () => undefined;
    const api: Partial<WorkbenchApi> = {
      request: answer,
      onNotification: () => () => undefined,
      onEngineState: (listener) => ((stateListener = listener), () => undefined),
    };
    return { api: api as WorkbenchApi, setState: (state: EngineState) => stateListener(state) };
  }

  it('unwraps results, turns error outcomes into EngineErrors, and maps engine states', async () => {
    const { api, setState } = fakeApi(async (method) =>
      method === 'listRuns' ? { ok: true, result: { runs: [] } } as never : { ok: false, error: { code: errorCodes.requestFailed, message: 'book.txt: no such file' } });
    const transport = createIpcTransport(api);
    expect(transport.kind).toBe('ipc');
    const statuses: [ConnectionStatus, string | null][] = [];
    transport.onStatus((status, detail) => statuses.push([status, detail]));
    expect(await transport.request('listRuns', {})).toEqual({ runs: [] });
    const failure = await transport.request('openBook', { path: 'book.txt' }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(EngineError);
    expect((failure as EngineError).message).toBe('book.txt: no such file');
    setState({ status: 'crashed', message: 'the engine stopped (SIGKILL); restarting it', restarts: 0 });
    setState({ status: 'ready', message: null, restarts: 1 });
    setState({ status: 'failed', message: 'it kept stopping', restarts: 4 });
    expect(statuses).toEqual([
      ['connecting', null], ['restarting', 'the engine stopped (SIGKILL); restarting it'], ['connected', null], ['disconnected', 'it kept stopping'],
    ]);
  });

  it('counts the engine as ready once a request is answered, even if the state message came before the page listened', async () => {
    const { api } = fakeApi(async () => ({ ok: true, result: {} }) as never);
    const transport = createIpcTransport(api);
    const statuses: ConnectionStatus[] = [];
    transport.onStatus((status) => statuses.push(status));
    await until(() => statuses.includes('connected'), 30_000);
    expect(detectTransport({ workbench: api, location: { host: '', search: '' } })).toMatchObject({ kind: 'ipc' });
  });
});
