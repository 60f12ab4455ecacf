/**
 * Web mode's shape: a WebSocket server relaying to a real engine child process (`serve --stdio`) that the desktop
 * app's supervisor restarts. The token and Origin checks hold, errors keep their code and line through the relay,
 * and a page's socket outlives the engine process: it hears `engineState` (crashed, then ready) and goes on.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { tempDir } from '../../test/helpers/tiny-models.js';
import { errorCodes, type NotificationParams } from '../protocol.js';
import { bridgeEngineProcess } from './engine-bridge.js';
import { serveWebSocket } from './websocket-transport.js';
import { until } from '../../test/helpers/until.js';

const root = join(import.meta.dirname, '..', '..');
const work = tempDir('ttt-engine-bridge-');
afterAll(() => work.cleanup());

describe('web mode bridge to the engine process', () => {
  it('relays requests and errors, refuses foreign pages, and keeps the socket across an engine crash', async () => {
    const pids: number[] = [];
    const bridge = bridgeEngineProcess(() => {
      const child = spawn(process.execPath, [join(root, 'bin', 'ttt-workbench.js'), 'serve', '--stdio', '--data', work.dir, '--backend', 'cpu'], { stdio: 'pipe' });
      pids.push(child.pid!);
      return child;
    }, { restartDelaysMs: [0] });
    const server = await serveWebSocket(bridge);
    const open = (options: WebSocket.ClientOptions = {}) => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(server.wsUrl, options);
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
    try {
      await expect(open({ origin: 'https://evil.example' })).rejects.toThrow('HTTP 403');
      const ws = await open({ origin: `http://127.0.0.1:${server.port}` });
      const states: NotificationParams<'engineState'>[] = [];
      const replies = new Map<number, { result?: unknown; error?: { code: number; message: string } }>();
      ws.on('message', (data) => {
        const json = JSON.parse(data.toString()) as { id?: number; method?: string; params?: unknown; result?: unknown; error?: { code: number; message: string } };
        if (json.method === 'engineState') states.push(json.params as NotificationParams<'engineState'>);
        else if (typeof json.id === 'number') replies.set(json.id, json);
      });
      let nextId = 1;
      const call = async (method: string, params: unknown = {}) => {
        const id = nextId++;
        ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
        await until(() => replies.has(id));
        return replies.get(id)!;
      };

      expect((await call('info')).result).toMatchObject({ runsDir: join(work.dir, 'runs') });
      await until(() => states.at(-1)?.status === 'ready');
      expect(states[0].status).toMatch(/^(starting|ready)$/); // told on connecting
      // checked here, relayed there: each keeps its code and one line
      expect((await call('toString')).error).toEqual({ code: errorCodes.methodNotFound, message: 'unknown method "toString"' });
      expect((await call('getRun', { runId: 5 })).error?.code).toBe(errorCodes.invalidParams);
      expect((await call('getRun', { runId: 'nope' })).error).toEqual({ code: errorCodes.requestFailed, message: 'run nope: no such run' });

      process.kill(pids[0], 'SIGKILL');
      await until(() => states.filter((s) => s.status === 'ready').length === 2);
      expect(states.slice(-3).map((s) => s.status)).toEqual(['crashed', 'starting', 'ready']);
      expect(states.at(-3)!.message).toMatch(/^the engine stopped \(SIGKILL\).*restarting it$/);
      expect(ws.readyState).toBe(WebSocket.OPEN);
      expect((await call('listRuns')).result).toEqual({ runs: [] });
      expect(pids).toHaveLength(2);
      expect(bridge.pid).toBe(pids[1]);
      ws.close();
    } finally {
      await bridge.stop();
      await server.close();
    }
  });
});
